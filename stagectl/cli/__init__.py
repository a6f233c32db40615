"""The command line: ``stagectl`` and its subcommands (entry: :func:`stagectl.cli.main.main`)."""

"""``python -m stagectl``: the same as the ``stagectl`` command."""

from stagectl.cli.main import main

main()

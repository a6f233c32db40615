"""stagectl: run an LED virtual-production stage and its render farm.

The ``stagectl`` package holds the stage engine, configuration, the client bus and the CLI.
It never imports Qt; the console lives in :mod:`gui`.
"""

__version__ = "0.1.0"

"""Wire codecs, device drivers and simulators.

Nothing here imports the engine (:mod:`stagectl`), the scheduler or Qt.
"""

"""NovaStar COEX (MX40 Pro and kin): driver, simulator and reply parsers.

See ``docs/protocols/novastar-coex.md``.
"""

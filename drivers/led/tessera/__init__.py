"""Brompton Tessera over its HTTP IP-control API: driver, simulator, reply parsers."""

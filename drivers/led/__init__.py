"""LED processor family: OSC address space, driver and simulator."""

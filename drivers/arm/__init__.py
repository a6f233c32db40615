"""Robotic camera arm over ZeroMQ: codec, kinematics, motion planning, driver, simulator."""

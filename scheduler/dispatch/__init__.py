"""Render-farm execution: a durable controller, GPU worker agents over ZeroMQ, pool backends.

See docs/farm-dispatch.md for the protocol, the job file format and the task states.
"""

"""Render-farm planner: CP-SAT assignment of render chunks to GPU nodes and pools."""

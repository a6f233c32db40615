"""Planning: stage booking and the render-farm planner.

Pure planning code: it never imports devices, the engine or Qt.
"""

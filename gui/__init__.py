"""The PySide6 operator console: the only package that imports Qt."""

"""Where frames come from: one resolver (``open_source``) for files, folders, cameras and streams."""

from .resolve import classify, open_source

__all__ = ["classify", "open_source"]

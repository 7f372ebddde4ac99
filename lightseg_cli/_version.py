"""The package version, in the lowest layer so every module can read it without importing the package."""

__version__ = "0.1.0"

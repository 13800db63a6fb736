"""The package version, importable from every layer (the package root sits at the top of the layers)."""

__version__ = "0.1.0"

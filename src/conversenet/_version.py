"""The package version (read by pyproject.toml, shown by ``conversenet --version``)."""

__version__ = "0.1.0"

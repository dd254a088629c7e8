"""labcheck: a pytest-based validation harness for hands-on container labs."""

__version__ = "0.1.0"

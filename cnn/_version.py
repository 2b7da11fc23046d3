"""The engine's version: the one source (pyproject.toml reads it, ``cnn --version`` prints it)."""
__version__ = "0.2.0"

"""Keras's ``keras.models`` names: ``cnn.models.Sequential``, ``cnn.models.load_model``."""
from .io import load_model  # noqa: F401
from .model import Sequential  # noqa: F401

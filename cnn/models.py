"""Keras's ``keras.models`` names: ``cnn.models.Sequential``, ``cnn.models.Model``, ``cnn.models.load_model``."""
from .functional import Model  # noqa: F401
from .saving import load_model  # noqa: F401
from .model import Sequential  # noqa: F401

"""Keras's ``keras.saving`` names for a user's own layers and for loading."""
from .io import load_model  # noqa: F401
from .layers import register


def register_keras_serializable(package="Custom", name=None):
    """Register a layer class under its name (and ``package>name``), as Keras's
    decorator does, so that saved models holding it load again."""
    def add(cls):
        register(cls, name=name or cls.__name__)
        register(cls, name=f"{package}>{name or cls.__name__}")
        return cls

    return add

"""The engine's own error types.

Every error subclasses :class:`CNNError` and also the built-in type a Python
user would expect (``ValueError`` for bad values, ``OSError`` never: file
problems are :class:`DataFileError` / :class:`ModelFileError`), so both
``except CNNError`` and ``except ValueError`` work.
"""


class CNNError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(CNNError, ValueError):
    """Arrays or arguments given to the engine are unusable (shape, dtype, NaN...)."""


class DataFileError(CNNError, ValueError):
    """An IDX or text data file is corrupt, truncated or not what it claims."""


class ModelFileError(CNNError, ValueError):
    """A saved model file is corrupt, truncated or does not match the architecture."""


class TrainingDivergedError(CNNError, FloatingPointError):
    """The loss became NaN or infinite during training."""


class NotInEngineError(CNNError, ImportError):
    """A Keras name this engine does not have (:mod:`cnn.missing` says what to use
    instead). An ImportError, so that ``from cnn.layers import Add`` keeps the message."""

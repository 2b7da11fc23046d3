"""The engine's global settings, named as Keras names them.

``floatx()`` is the dtype of new weights and of the data the model computes
on: 'float32' by default, 'float64' after ``set_floatx('float64')`` (what the
gradient checks and the float64 parity tests with Keras use).
"""
import numpy as np

from .errors import InputError

_FLOATX = "float32"
EPSILON = 1e-7  # Keras's backend.epsilon(): the clipping margin of the losses


def floatx():
    """The default float type, as a string ('float32' or 'float64')."""
    return _FLOATX


def set_floatx(value):
    """Make ``value`` ('float32' or 'float64') the dtype of every weight and
    computation created from now on (layers built before keep theirs)."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise InputError(f"floatx must be 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def epsilon():
    return EPSILON


def float_dtype():
    """``floatx()`` as a NumPy dtype."""
    return np.dtype(_FLOATX)

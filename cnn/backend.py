"""The engine's global settings, named as Keras names them.

``floatx()`` is the dtype of new weights and of the data the model computes
on: 'float32' by default, 'float64' after ``set_floatx('float64')`` (what the
gradient checks and the float64 parity tests with Keras use).

``set_floatx`` is process-wide, as Keras's is. The gradient checks need
float64 for the layers they build without changing it for anyone else:
:func:`floatx_in_this_thread` sets it for the calling thread alone, so a model
another thread builds meanwhile keeps the process's setting.
"""
import contextlib
import threading

import numpy as np

from .errors import InputError

_FLOATX = "float32"
_local = threading.local()  # .floatx: this thread's own setting, while floatx_in_this_thread holds
EPSILON = 1e-7  # Keras's backend.epsilon(): the clipping margin of the losses


def floatx():
    """The default float type, as a string ('float32' or 'float64')."""
    return getattr(_local, "floatx", None) or _FLOATX


@contextlib.contextmanager
def floatx_in_this_thread(value):
    """``floatx()`` is ``value`` in the calling thread while the block runs
    (other threads keep theirs); nested blocks restore what they found."""
    if value not in ("float32", "float64"):
        raise InputError(f"floatx must be 'float32' or 'float64', got {value!r}")
    saved = getattr(_local, "floatx", None)
    _local.floatx = value
    try:
        yield
    finally:
        _local.floatx = saved


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
    return np.dtype(floatx())

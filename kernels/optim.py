"""Fused optimizer updates: one pass over a parameter instead of a NumPy
expression's several passes and temporaries.

Each numba kernel updates ``param`` and its state arrays in place; its NumPy
twin computes the same update in plain array expressions.
"""
import numpy as np
from numba import njit

from .parallel import elementwise

SPLIT = 2**18  # elements a chunk; smaller parameters are updated in one go


def adadelta_update_numpy(param, grad, eg, edx, lr, rho, eps):
    """Keras's Adadelta step (see cnn.optimizers.Adadelta), in array expressions."""
    eg *= rho
    eg += (1 - rho) * np.square(grad)
    delta = -np.sqrt(edx + eps) / np.sqrt(eg + eps) * grad
    edx *= rho
    edx += (1 - rho) * np.square(delta)
    param += lr * delta


@njit(cache=True, nogil=True)
def _adadelta_flat(param, grad, eg, edx, lr, rho, eps):
    for i in range(param.size):
        g = grad[i]
        eg[i] = rho * eg[i] + (1 - rho) * g * g
        delta = -np.sqrt(edx[i] + eps) / np.sqrt(eg[i] + eps) * g
        edx[i] = rho * edx[i] + (1 - rho) * delta * delta
        param[i] += lr * delta


def adadelta_update_numba(param, grad, eg, edx, lr, rho, eps):
    """The same step in compiled passes over contiguous arrays, a large
    parameter in chunks on every core (each element's update is independent,
    so the split changes nothing)."""
    dtype = param.dtype.type  # keep float32 arithmetic in float32
    elementwise(_adadelta_flat, (param, np.ascontiguousarray(grad), eg, edx), dtype(lr), dtype(rho), dtype(eps),
                split=SPLIT)

"""Elementwise kernels: ReLU, softmax and log-softmax.

Each backward takes what its forward returned, so no extra cache is needed.
Shapes: any; softmax works along the last axis.
"""
import numpy as np
from numba import njit


def relu_forward(z):
    """``max(z, 0)``, written into ``z`` (callers pass a fresh array)."""
    return np.maximum(z, 0, out=z)


def relu_backward_numpy(dout, out):
    """Gradient of ReLU from its output: passes where the output is > 0.

    At exactly 0 the gradient is 0, as in TensorFlow.
    """
    return np.where(out > 0, dout, 0).astype(dout.dtype, copy=False)


@njit(cache=True, nogil=True)
def _relu_mask_backward_flat(dout, mask, dz):
    for i in range(dz.size):
        dz[i] = dout[i] if mask[i] > 0 else 0  # True > 0, and an output > 0


def relu_backward_mask_into(dout, mask, dz):
    """:func:`relu_backward_numpy` into ``dz`` in one compiled pass, from the
    mask ``out > 0`` (bool, same shape) or from ReLU's output itself.
    All three must be C-contiguous."""
    _relu_mask_backward_flat(dout.reshape(-1), mask.reshape(-1), dz.reshape(-1))
    return dz


def relu_backward(dout, out):
    """:func:`relu_backward_numpy` by the compiled kernel, into a new array."""
    dout = np.ascontiguousarray(dout)
    return relu_backward_mask_into(dout, np.ascontiguousarray(out), np.empty_like(dout))


def softmax_forward(z):
    """Softmax along the last axis, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dout, p):
    """Vector-Jacobian product of softmax: ``p * (dout - sum(dout * p))``."""
    return p * (dout - (dout * p).sum(axis=-1, keepdims=True))


def log_softmax(z):
    """``log(softmax(z))`` without forming the probabilities (no log(0))."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def linear_forward(z):
    return z


def linear_backward(dout, out):
    return dout


ACTIVATIONS = {
    "linear": (linear_forward, linear_backward),
    "relu": (relu_forward, relu_backward),
    "softmax": (softmax_forward, softmax_backward),
}

"""Elementwise kernels: the activations, softmax and log-softmax.

Each ``*_backward(dout, out, z)`` is the vector-Jacobian product of its
forward, given the forward's output ``out`` and, for the activations that need
it (``NEEDS_INPUT``), its input ``z``; the others are passed ``z=None``, so a
layer keeps only what the backward pass reads.
Shapes: any; softmax works along the last axis.
"""
import math

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


def relu_backward(dout, out, z=None):
    """:func:`relu_backward_numpy` by the compiled kernel, into a new array."""
    dout = np.ascontiguousarray(dout)
    return relu_backward_mask_into(dout, np.ascontiguousarray(out), np.empty_like(dout))


def softmax_forward(z):
    """Softmax along the last axis, shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dout, p, z=None):
    """Vector-Jacobian product of softmax: ``p * (dout - sum(dout * p))``."""
    return p * (dout - (dout * p).sum(axis=-1, keepdims=True))


def log_softmax(z):
    """``log(softmax(z))`` without forming the probabilities (no log(0))."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def linear_forward(z):
    return z


def linear_backward(dout, out, z=None):
    return dout


def tanh_forward(z):
    return np.tanh(z)


def tanh_backward(dout, out, z=None):
    return dout * (1 - out * out)


def sigmoid_forward(z):
    """``1 / (1 + exp(-z))`` without overflow for large negative z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def sigmoid_backward(dout, out, z=None):
    return dout * out * (1 - out)


def elu_forward(z, alpha=1.0):
    """``z`` where z > 0, ``alpha * (exp(z) - 1)`` elsewhere."""
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)


def elu_backward(dout, out, z=None, alpha=1.0):
    # below 0 the derivative alpha * exp(z) is out + alpha
    return np.where(out > 0, dout, dout * (out + alpha)).astype(dout.dtype, copy=False)


def leaky_relu_forward(z, negative_slope=0.2):
    return np.where(z > 0, z, negative_slope * z).astype(z.dtype, copy=False)


def leaky_relu_backward(dout, out, z=None, negative_slope=0.2):
    # for a slope >= 0 the output is > 0 exactly where the input is
    return np.where(out > 0, dout, negative_slope * dout).astype(dout.dtype, copy=False)


def softplus_forward(z):
    """``log(1 + exp(z))``, stable for large |z|."""
    return np.logaddexp(0, z).astype(z.dtype, copy=False)


def softplus_backward(dout, out, z):
    return dout * sigmoid_forward(z)


def silu_forward(z):
    """Swish / SiLU: ``z * sigmoid(z)``."""
    return z * sigmoid_forward(z)


def silu_backward(dout, out, z):
    s = sigmoid_forward(z)
    return dout * (s + z * s * (1 - s))


def relu6_forward(z):
    """``min(max(z, 0), 6)`` (MobileNet's activation)."""
    return np.clip(z, 0, 6).astype(z.dtype, copy=False)


def relu6_backward(dout, out, z=None):
    # passes strictly inside (0, 6), where the output is neither clipped value (TensorFlow's rule)
    return np.where((out > 0) & (out < 6), dout, 0).astype(dout.dtype, copy=False)


def hard_sigmoid_forward(z):
    """Keras 3's ``relu6(z + 3) / 6``: 0 below -3, 1 above 3, a line between."""
    return np.clip(z / 6 + 0.5, 0, 1).astype(z.dtype, copy=False)


def hard_sigmoid_backward(dout, out, z=None):
    return np.where((out > 0) & (out < 1), dout / 6, 0).astype(dout.dtype, copy=False)


def hard_silu_forward(z):
    """Hard swish / hard SiLU (MobileNetV3): ``z * relu6(z + 3) / 6``."""
    return (z * hard_sigmoid_forward(z)).astype(z.dtype, copy=False)


def hard_silu_backward(dout, out, z):
    # d/dz of z (z + 3) / 6 is (2 z + 3) / 6 on (-3, 3); 0 below, 1 from 3 on
    slope = np.where(z >= 3, 1.0, np.where(z > -3, (2 * z + 3) / 6, 0.0))
    return (dout * slope).astype(dout.dtype, copy=False)


# GELU, exact form 0.5 z (1 + erf(z / sqrt 2)) (Keras's default, approximate=False).
# NumPy has no erf: the NumPy twin maps math.erf over the array; the compiled
# ufunc runs the same formula at C speed.
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def gelu_forward_numpy(z):
    erf = np.vectorize(math.erf, otypes=[np.float64])(z * _SQRT_HALF)
    return (0.5 * z * (1 + erf)).astype(z.dtype, copy=False)


def gelu_backward_numpy(dout, out, z):
    erf = np.vectorize(math.erf, otypes=[np.float64])(z * _SQRT_HALF)
    return (dout * (0.5 * (1 + erf) + z * np.exp(-0.5 * z * z) * _INV_SQRT_2PI)).astype(dout.dtype, copy=False)


@njit(cache=True, nogil=True)
def _gelu_flat(z, out):
    for i in range(z.size):
        out[i] = 0.5 * z[i] * (1 + math.erf(z[i] * _SQRT_HALF))
    return out


@njit(cache=True, nogil=True)
def _gelu_grad_flat(dout, z, out):
    for i in range(z.size):
        x = z[i]
        out[i] = dout[i] * (0.5 * (1 + math.erf(x * _SQRT_HALF)) + x * math.exp(-0.5 * x * x) * _INV_SQRT_2PI)
    return out


# compiled on first use (and cached), not at import: a ufunc with signatures
# compiles when the module loads, which cost every program ~50 MB and a fraction of a second
def gelu_forward(z):
    z = np.ascontiguousarray(z)
    return _gelu_flat(z.reshape(-1), np.empty(z.size, z.dtype)).reshape(z.shape)


def gelu_backward(dout, out, z):
    z = np.ascontiguousarray(z)
    dout = np.ascontiguousarray(dout, dtype=z.dtype)
    return _gelu_grad_flat(dout.reshape(-1), z.reshape(-1), np.empty(z.size, z.dtype)).reshape(z.shape)


# name -> (forward, backward); parameters (alpha, negative_slope) are bound by cnn.activations
KERNELS = {
    "linear": (linear_forward, linear_backward),
    "relu": (relu_forward, relu_backward),
    "softmax": (softmax_forward, softmax_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "elu": (elu_forward, elu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "softplus": (softplus_forward, softplus_backward),
    "silu": (silu_forward, silu_backward),
    "gelu": (gelu_forward, gelu_backward),
    "relu6": (relu6_forward, relu6_backward),
    "hard_sigmoid": (hard_sigmoid_forward, hard_sigmoid_backward),
    "hard_silu": (hard_silu_forward, hard_silu_backward),
}
NEEDS_INPUT = {"softplus", "silu", "gelu", "hard_silu"}  # their backward reads z, not only the output

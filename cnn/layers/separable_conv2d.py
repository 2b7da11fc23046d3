"""SeparableConv2D: a depthwise convolution, then a 1x1 convolution that mixes
the channels (Xception's and MobileNet's block), as one layer."""
from kernels.depthwise import IMPLS, depthwise_backward, depthwise_forward
from kernels.parallel import matmul

from .. import initializers, regularizers
from ..errors import InputError
from .base import Example, WithActivation, channels_last, pair, padding_mode, positive_int, sliding_output


class SeparableConv2D(WithActivation):
    """Depthwise-separable 2-D convolution, as ``keras.layers.SeparableConv2D``:
    each channel through its own ``depth_multiplier`` filters (no bias),
    then every output pixel's channels times the (cin * dm, filters) pointwise
    kernel, plus the bias, then the activation.

    Parameters
    ----------
    filters, kernel_size, strides, padding, dilation_rate, depth_multiplier,
    activation, use_bias : as :class:`Conv2D` and :class:`DepthwiseConv2D`
    depthwise_initializer, pointwise_initializer, bias_initializer,
    depthwise_regularizer, pointwise_regularizer, bias_regularizer : Keras's
    impl : {'numba', 'numpy'} for the depthwise step (not saved)

    Weights, in Keras's order: depthwise_kernel (kh, kw, cin, dm),
    pointwise_kernel (1, 1, cin * dm, filters), bias (filters,).
    Shapes: x (n, h, w, cin) -> out (n, oh, ow, filters).
    """

    uses_rng = True
    keras_defaults = {"depthwise_constraint": None, "pointwise_constraint": None, "bias_constraint": None}
    examples = (
        Example("3x3 'same'", {"filters": 4, "kernel_size": 3, "padding": "same"}, (6, 6, 3), reduction=27),
        Example("3x3 stride 2, multiplier 2, relu", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                                                      "depth_multiplier": 2, "activation": "relu",
                                                      "bias_initializer": "ones"}, (7, 6, 2), reduction=36),
        Example("2x2 dilation 2, no bias [numpy]", {"filters": 2, "kernel_size": 2, "dilation_rate": 2,
                                                    "use_bias": False, "impl": "numpy"}, (5, 6, 2), reduction=8),
    )

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, impl="numba", **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.padding = padding_mode(padding)
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise InputError(f"SeparableConv2D: strides={strides!r} with dilation_rate={dilation_rate!r}: "
                             "a stride above 1 cannot go with a dilation above 1 (as in Keras)")
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        for init in (depthwise_initializer, pointwise_initializer, bias_initializer):
            initializers.get(init)
        self.depthwise_initializer, self.pointwise_initializer = depthwise_initializer, pointwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if impl not in IMPLS:
            raise InputError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl

    def compute_output_shape(self, input_shape):
        return (*sliding_output(self, input_shape, self.kernel_size, self.dilation_rate), self.filters)

    def build(self, input_shape):
        out = super().build(input_shape)
        mid = self.input_shape[2] * self.depth_multiplier
        self.add_weight("depthwise_kernel", (*self.kernel_size, self.input_shape[2], self.depth_multiplier),
                        self.depthwise_initializer, regularizer=self.depthwise_regularizer)
        self.add_weight("pointwise_kernel", (1, 1, mid, self.filters), self.pointwise_initializer,
                        regularizer=self.pointwise_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer)
        return out

    def forward(self, x, training=False):
        self._check_input(x)
        mid, self._cache = depthwise_forward(x, self.params["depthwise_kernel"], None, self.strides, self.padding,
                                             self.dilation_rate, self.impl)
        self._mid = mid
        pointwise = self.params["pointwise_kernel"][0, 0]
        z = matmul(mid.reshape(-1, mid.shape[3]), pointwise).reshape(*mid.shape[:3], self.filters)
        if self.use_bias:
            z += self.params["bias"]
        return self._activate(z)

    def backward_from_logits(self, dz):
        mid = self._mid
        flat = dz.reshape(-1, self.filters)
        pointwise = self.params["pointwise_kernel"][0, 0]
        self.grads["pointwise_kernel"] = matmul(mid.reshape(-1, mid.shape[3]).T, flat)[None, None]
        if self.use_bias:
            self.grads["bias"] = flat.sum(axis=0)
        dmid = matmul(flat, pointwise.T).reshape(mid.shape)
        dx, self.grads["depthwise_kernel"], _ = depthwise_backward(dmid, self._cache, self.needs_input_gradient)
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "depth_multiplier": self.depth_multiplier, "activation": self.activation, "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}

"""DepthwiseConv2D: one filter (or ``depth_multiplier`` of them) per input
channel, no sum across channels (kernels in :mod:`kernels.depthwise`)."""
from kernels.depthwise import IMPLS, depthwise_backward, depthwise_forward

from .. import initializers, regularizers
from ..errors import InputError
from .base import Example, WithActivation, channels_last, pair, padding_mode, positive_int, sliding_output


class DepthwiseConv2D(WithActivation):
    """Depthwise 2-D convolution, as ``keras.layers.DepthwiseConv2D``.

    Parameters
    ----------
    kernel_size, strides, padding, dilation_rate : as :class:`Conv2D`
    depth_multiplier : int, filters per input channel (output channels
        ``cin * depth_multiplier``; channel ``c * dm + m`` is channel ``c``
        through its filter ``m``)
    activation, use_bias : as :class:`Conv2D`
    depthwise_initializer, bias_initializer, depthwise_regularizer,
    bias_regularizer : Keras's names and defaults
    impl : {'numba', 'numpy'} (not saved): the compiled loops, or the twin

    Shapes: x (n, h, w, cin) -> out (n, oh, ow, cin * dm);
    kernel (kh, kw, cin, dm); bias (cin * dm,).
    """

    uses_rng = True
    keras_defaults = {"depthwise_constraint": None, "bias_constraint": None}
    examples = (
        Example("3x3 'same'", {"kernel_size": 3, "padding": "same"}, (6, 6, 3), reduction=9),
        Example("3x3 stride 2, multiplier 2, relu", {"kernel_size": 3, "strides": 2, "padding": "same",
                                                      "depth_multiplier": 2, "activation": "relu",
                                                      "bias_initializer": "ones"}, (7, 6, 2), reduction=9),
        Example("2x3 'valid' dilation 2, no bias", {"kernel_size": (2, 3), "dilation_rate": 2, "use_bias": False},
                (6, 7, 2), reduction=6),
        Example("3x3 [numpy]", {"kernel_size": 3, "depth_multiplier": 3, "impl": "numpy"}, (5, 5, 2), reduction=9),
    )

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None, impl="numba",
                 **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.padding = padding_mode(padding)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise InputError(f"DepthwiseConv2D: strides={strides!r} with dilation_rate={dilation_rate!r}: "
                             "a stride above 1 cannot go with a dilation above 1 (as in Keras)")
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        initializers.get(depthwise_initializer), initializers.get(bias_initializer)
        self.depthwise_initializer, self.bias_initializer = depthwise_initializer, bias_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if impl not in IMPLS:
            raise InputError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl

    def compute_output_shape(self, input_shape):
        oh, ow = sliding_output(self, input_shape, self.kernel_size, self.dilation_rate)
        return (oh, ow, input_shape[2] * self.depth_multiplier)

    def build(self, input_shape):
        out = super().build(input_shape)
        cin = self.input_shape[2]
        self.add_weight("kernel", (*self.kernel_size, cin, self.depth_multiplier), self.depthwise_initializer,
                        regularizer=self.depthwise_regularizer)
        if self.use_bias:
            self.add_weight("bias", (cin * self.depth_multiplier,), self.bias_initializer,
                            regularizer=self.bias_regularizer)
        return out

    def forward(self, x, training=False):
        self._check_input(x)
        z, self._cache = depthwise_forward(x, self.params["kernel"], self.params.get("bias"), self.strides,
                                           self.padding, self.dilation_rate, self.impl)
        return self._activate(z)

    def backward_from_logits(self, dz):
        dx, self.grads["kernel"], db = depthwise_backward(dz, self._cache, self.needs_input_gradient)
        if self.use_bias:
            self.grads["bias"] = db
        return dx

    def get_config(self):
        return {**super().get_config(), "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "dilation_rate": list(self.dilation_rate), "activation": self.activation, "use_bias": self.use_bias,
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}

"""Conv2DTranspose: the transpose (adjoint) of a convolution, the learned
upsampling of U-Nets and autoencoders (kernels in :mod:`kernels.transpose`)."""

from kernels.transpose import IMPLS, conv2d_transpose_backward, conv2d_transpose_forward, transpose_geometry

from ..errors import InputError
from .base import Example, KernelBiasLayer, channels_last, pair, padding_mode, positive_int


class Conv2DTranspose(KernelBiasLayer):
    """Transposed 2-D convolution, as ``keras.layers.Conv2DTranspose``.

    Each input pixel is scattered through the kernel into the output (the
    input gradient of the convolution whose kernel this is).

    Parameters
    ----------
    filters, kernel_size, strides, padding, dilation_rate, activation, use_bias,
    kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer :
        as :class:`Conv2D`
    output_padding : None, int or (int, int): extra rows/columns at the
        bottom/right, each below its stride (Keras's rule)
    impl : {'numba', 'numpy'} (not saved)

    Shapes: x (n, h, w, cin) -> out (n, H, W, filters), 'same' H = h * stride,
    'valid' H = h * stride + max(k - stride, 0); kernel (kh, kw, filters, cin),
    Keras's layout; bias (filters,).
    """

    examples = (
        Example("2x2 stride 2 (U-Net)", {"filters": 3, "kernel_size": 2, "strides": 2}, (4, 3, 2), reduction=8),
        Example("3x3 stride 2 'same'", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
                (4, 5, 3), reduction=12),
        Example("3x3 'valid' relu", {"filters": 2, "kernel_size": 3, "activation": "relu",
                                     "bias_initializer": "ones"}, (4, 4, 2), reduction=18),
        Example("3x3 stride 2 output_padding 1", {"filters": 2, "kernel_size": 3, "strides": 2,
                                                  "output_padding": 1}, (3, 4, 2), reduction=18),
        Example("3x3 stride (2, 1) 'same' output_padding (1, 0)",
                {"filters": 2, "kernel_size": 3, "strides": (2, 1), "padding": "same",
                 "output_padding": (1, 0)}, (3, 4, 2), reduction=18),
        Example("3x3 dilation 2, no bias [numpy]", {"filters": 2, "kernel_size": 3, "dilation_rate": 2,
                                                   "use_bias": False, "impl": "numpy"}, (4, 4, 2), reduction=18,
                # TensorFlow's CPU kernels refuse a dilated transposed convolution: the
                # adjoint identity with the (Keras-checked) dilated Conv2D checks it instead
                keras=False),
    )

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, impl="numba", **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.padding = padding_mode(padding)
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise InputError(f"Conv2DTranspose: strides={strides!r} with dilation_rate={dilation_rate!r}: "
                             "a stride above 1 cannot go with a dilation above 1 (as in Keras)")
        self.output_padding = None if output_padding is None else pair(output_padding, "output_padding", 0)
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            raise InputError(f"Conv2DTranspose: output_padding={output_padding!r} must be below the strides "
                             f"{self.strides} (as in Keras)")
        self._set_activation(activation)
        self._set_kernel_and_bias(use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer)
        if impl not in IMPLS:
            raise InputError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise InputError(f"Conv2DTranspose layer {self.name!r} needs samples of shape (height, width, channels), "
                             f"got {tuple(input_shape)}")
        try:
            g = transpose_geometry((1, *input_shape), (*self.kernel_size, self.filters, input_shape[2]), self.strides,
                                   self.padding, self.output_padding, self.dilation_rate)
        except ValueError as err:
            raise InputError(f"layer {self.name!r}: {err}") from None
        return (g.out_h, g.out_w, self.filters)

    def build(self, input_shape):
        out = super().build(input_shape)
        self.add_weight("kernel", (*self.kernel_size, self.filters, self.input_shape[2]), self.kernel_initializer,
                        regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, regularizer=self.bias_regularizer)
        return out

    def forward(self, x, training=False):
        self._check_input(x)
        z, self._cache = conv2d_transpose_forward(x, self.params["kernel"], self.params.get("bias"), self.strides,
                                                  self.padding, self.output_padding, self.dilation_rate, self.impl)
        return self._activate(z)

    def backward_from_logits(self, dz):
        dx, dw, db = conv2d_transpose_backward(dz, self._cache, self.needs_input_gradient)
        self.grads["kernel"] = dw.astype(self.params["kernel"].dtype, copy=False)
        if self.use_bias:
            self.grads["bias"] = db
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                "dilation_rate": list(self.dilation_rate), **self._kernel_and_bias_config()}




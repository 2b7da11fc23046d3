"""Conv2D: 2-D convolution over NHWC images (kernels in :mod:`kernels.conv`)."""
import numpy as np

from kernels.conv import IMPLS as CONV_IMPLS
from kernels.conv import conv2d_backward, conv2d_forward, winograd_applies

from ..errors import InputError
from .base import Example, KernelBiasLayer, channels_last, pair, padding_mode, positive_int, sliding_output


class Conv2D(KernelBiasLayer):
    """2-D convolution over NHWC images (cross-correlation, as in Keras).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int)
    padding : {'valid', 'same'}
        'valid' is no padding; 'same' gives ceil(size / stride) outputs, the
        odd extra row/column of zeros at the bottom/right.
    dilation_rate : int or (int, int)
        Spacing of the kernel's taps: a 3x3 kernel with rate 2 spans 5x5.
        As in Keras, a rate above 1 cannot go with a stride above 1.
    groups : int dividing both the input channels and ``filters``
        Grouped convolution (ResNeXt's): input channels and filters split
        into ``groups`` contiguous blocks, block ``g`` of filters reading
        only block ``g`` of the channels; the kernel is then
        (kh, kw, cin / groups, filters), as in Keras.
    activation : str, None or a function of :mod:`cnn.activations`
    use_bias : bool
    kernel_initializer, bias_initializer : Keras initializer names or objects
    kernel_regularizer, bias_regularizer : None, 'l2' or a :mod:`cnn.regularizers` object
    impl : {'numba', 'im2col', 'winograd', 'numpy'}
        How the kernels compute (not saved with the model): 'numba' (the
        default) takes Winograd F(4x4, 3x3) for 3x3 stride-1 layers with 16 to
        128 input channels on calls of 1,500 output pixels or more (2 of the
        chapter's images; 6,000 above 64 channels), and im2col otherwise
        (kernels/conv.py has the measurements);
        'im2col' and 'winograd' force one; 'numpy' is the readable reference
        (kernels/conv.py).

    Shapes: x (n, h, w, cin) -> out (n, oh, ow, filters);
    kernel (kh, kw, cin / groups, filters); bias (filters,).
    """

    examples = (
        Example("3x3 'same' [im2col]", {"filters": 4, "kernel_size": 3, "padding": "same", "impl": "im2col"},
                (7, 7, 2), reduction=18),
        Example("3x3 'same' [winograd]", {"filters": 4, "kernel_size": 3, "padding": "same", "impl": "winograd"},
                (7, 7, 2), reduction=18),
        Example("3x3 'same' [numpy]", {"filters": 4, "kernel_size": 3, "padding": "same", "impl": "numpy"},
                (7, 7, 2), reduction=18),
        Example("3x3 relu [winograd]", {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu",
                                        "impl": "winograd", "bias_initializer": "ones"}, (6, 6, 2), reduction=18),
        Example("3x3 stride 2 'same'", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
                (7, 6, 2), reduction=18),
        Example("2x3 'valid' stride (2, 1)", {"filters": 3, "kernel_size": (2, 3), "strides": (2, 1)}, (6, 7, 3),
                reduction=18),
        Example("3x3 dilation 2", {"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
                (7, 7, 2), reduction=18),
        Example("5x5 tanh, no bias", {"filters": 2, "kernel_size": 5, "activation": "tanh", "use_bias": False},
                (7, 7, 1), reduction=25),
        Example("3x3 'same' 2 groups", {"filters": 4, "kernel_size": 3, "padding": "same", "groups": 2},
                (6, 6, 4), reduction=18),
        Example("3x3 3 groups, relu [winograd]", {"filters": 6, "kernel_size": 3, "padding": "same", "groups": 3,
                                                  "activation": "relu", "bias_initializer": "ones",
                                                  "impl": "winograd"}, (6, 6, 3), reduction=9),
        Example("1x1 stride 2, 2 groups (ResNeXt)", {"filters": 4, "kernel_size": 1, "strides": 2, "groups": 2},
                (6, 5, 6), reduction=3),
        Example("3x3 2 groups, no bias", {"filters": 4, "kernel_size": 3, "groups": 2, "use_bias": False},
                (5, 6, 4), reduction=18),
    )

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, impl="numba",
                 **kwargs):
        super().__init__(**kwargs)
        channels_last(data_format)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.padding = padding_mode(padding)
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise InputError(f"Conv2D: strides={strides!r} with dilation_rate={dilation_rate!r}: "
                             "a stride above 1 cannot go with a dilation above 1 (as in Keras)")
        self.groups = positive_int(groups, "groups")
        if self.filters % self.groups:
            raise InputError(f"Conv2D: groups={groups!r} must divide filters={filters!r} (as in Keras)")
        self._set_activation(activation)
        self._set_kernel_and_bias(use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer)
        if impl not in CONV_IMPLS:
            raise InputError(f"impl must be one of {CONV_IMPLS}, got {impl!r}")
        if impl == "winograd" and not winograd_applies(self.kernel_size, self.strides, self.dilation_rate):
            raise InputError("impl='winograd' needs a 3x3 kernel, stride 1 and no dilation, "
                             f"got kernel {self.kernel_size}, strides {self.strides}, dilation {self.dilation_rate}")
        self.impl = impl

    def compute_output_shape(self, input_shape):
        out = (*sliding_output(self, input_shape, self.kernel_size, self.dilation_rate), self.filters)
        if input_shape[2] % self.groups:
            raise InputError(f"Conv2D layer {self.name!r}: groups={self.groups} must divide the {input_shape[2]} "
                             "input channels (as in Keras)")
        return out

    def build(self, input_shape):
        out = super().build(input_shape)
        self._add_kernel_and_bias((*self.kernel_size, self.input_shape[2] // self.groups, self.filters))
        return out

    def forward(self, x, training=False):
        self._check_input(x)
        # ReLU is fused into the convolution's kernel (applied chunk by chunk
        # while in cache); other activations run after it
        fused_relu = self.activation == "relu"
        kernel, bias = self.params["kernel"], self.params.get("bias")
        if self.groups == 1:
            z, self._cache = conv2d_forward(x, kernel, bias, self.strides, self.padding, self.impl, relu=fused_relu,
                                            relu_mask=training,  # a byte mask pays off only in training
                                            dilation=self.dilation_rate)
        else:  # each group is a convolution of its own channels by its own filters
            cin, cout = kernel.shape[2], self.filters // self.groups
            parts, self._cache = [], []
            for g in range(self.groups):
                part, cache = conv2d_forward(np.ascontiguousarray(x[..., g * cin:(g + 1) * cin]),
                                             np.ascontiguousarray(kernel[..., g * cout:(g + 1) * cout]),
                                             None if bias is None else bias[g * cout:(g + 1) * cout],
                                             self.strides, self.padding, self.impl, relu=fused_relu,
                                             relu_mask=training, dilation=self.dilation_rate)
                parts.append(part)
                self._cache.append(cache)
            z = np.concatenate(parts, axis=-1)
        if fused_relu:
            self.logits, self._out = None, None  # the kernel's cache keeps ReLU's mask
            return z
        return self._activate(z)

    def backward(self, dout):
        """dout (n, oh, ow, filters) -> dx (n, h, w, cin), or None when
        ``needs_input_gradient`` is False."""
        if self.activation == "relu":
            return self._backward_conv(dout)  # the kernel applies ReLU's mask itself
        return self._backward_conv(self._deactivate(dout))

    def backward_through_maxpool(self, dpool, pool):
        """Backward through ``pool``, a MaxPooling2D right above this layer,
        and through this layer: dpool (n, ph, pw, filters) -> dx (n, h, w, cin).

        With a fused ReLU and pool windows that tile the output (the usual
        2x2), the pool's backward and ReLU's run as one pass inside this
        layer's chunks; otherwise the two backward passes one after the other.
        """
        if self.activation != "relu" or self.groups > 1:
            return self.backward(pool.backward(dpool))
        return self._backward_conv(dpool, pool_cache=pool._cache)

    def backward_from_logits(self, dz):
        """Takes the gradient with respect to the pre-activation (the softmax
        case of :class:`WithActivation`)."""
        if self.activation == "relu":
            raise NotImplementedError("a ReLU convolution's backward takes the gradient of its output")
        return self._backward_conv(dz)

    def _backward_conv(self, dz, pool_cache=None):
        if self.groups == 1:
            dx, self.grads["kernel"], db = conv2d_backward(dz, self._cache, self.needs_input_gradient, pool_cache)
        else:
            cout = self.filters // self.groups
            grads = [conv2d_backward(np.ascontiguousarray(dz[..., g * cout:(g + 1) * cout]), cache,
                                     self.needs_input_gradient) for g, cache in enumerate(self._cache)]
            dx = np.concatenate([d for d, _, _ in grads], axis=-1) if self.needs_input_gradient else None
            self.grads["kernel"] = np.concatenate([k for _, k, _ in grads], axis=-1)
            db = np.concatenate([b for _, _, b in grads]) if self.use_bias else None
        if self.use_bias:
            self.grads["bias"] = db
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                **self._kernel_and_bias_config()}

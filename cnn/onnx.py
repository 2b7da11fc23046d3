"""ONNX both ways: a model of this engine as an ONNX graph that ONNX Runtime
runs, and an ONNX graph of a small CNN (PyTorch's export) as an engine model.

    cnn.onnx.export(model, "m.onnx")      # or model.save("m.onnx"), or: cnn export m.npz m.onnx
    model = cnn.onnx.load("m.onnx")       # or cnn.load_model("m.onnx"): see cnn.onnx_import

Export:

What is written:

* the model's interface as the engine's: NHWC images in and out (a batch of
  any size: the first axis is symbolic), float32, one graph input per model
  input and one output per model output, named as the model names them;
* inference semantics: Dropout, SpatialDropout2D and the random augmentation
  layers are the identity (RandomCrop is its inference resize), and
  BatchNormalization uses its moving statistics (folded into one scale and
  one shift per channel);
* opset 18 of the default domain, which ONNX Runtime's CPU provider runs.
  Tensors stay NHWC between layers; a convolution, transposed convolution,
  pooling or resize is wrapped in two Transposes (ONNX's Conv takes NCHW),
  which ONNX Runtime's optimizer cancels between neighbours. Flatten then
  flattens in Keras's order, so Dense weights need no permutation.

Every registered layer has a converter (``tests/test_onnx.py`` checks that
none is missing and that ONNX Runtime agrees with the engine on each
registry example); a layer without one (a user's own) is refused by name.
``onnx.checker`` checks every file before it is written, atomically.

The ``onnx`` package writes the protobuf (``pip install 'cnn-from-scratch[onnx]'``).
"""
import numpy as np

from kernels.geometry import window_geometry

from .errors import CNNError, InputError

OPSET = 18


class OnnxExportError(InputError):
    """A model (or a layer of it) that cannot be written as ONNX."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise CNNError("ONNX export needs the onnx package: pip install 'cnn-from-scratch[onnx]' "
                       "(or pip install onnx)") from None
    return onnx


class _Graph:
    """The nodes and initializers being written, with unique names."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.initializers, self._used = onnx, [], [], set()

    def name(self, base):
        base = base.replace(" ", "_")
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def const(self, base, value, dtype=np.float32):
        name = self.name(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, base, values):
        return self.const(base, np.asarray(values, dtype=np.int64), np.int64)

    def op(self, op_type, inputs, base, outputs=None, **attrs):
        out = outputs or self.name(f"{base}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=self.name(f"{base}/{op_type}_node"),
                                                     **attrs))
        return out

    def nchw(self, x, base):
        return self.op("Transpose", [x], base, perm=[0, 3, 1, 2])

    def nhwc(self, x, base):
        return self.op("Transpose", [x], base, perm=[0, 2, 3, 1])


# ---------------------------------------------------------------- activations
def _activation(g, name, x, base):
    """The activation ``name`` (a name the engine's configs store) applied to ``x``."""
    if name in (None, "linear"):
        return x
    if name == "relu":
        return g.op("Relu", [x], base)
    if name == "tanh":
        return g.op("Tanh", [x], base)
    if name == "sigmoid":
        return g.op("Sigmoid", [x], base)
    if name == "softmax":
        return g.op("Softmax", [x], base, axis=-1)
    if name == "elu":
        return g.op("Elu", [x], base, alpha=1.0)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], base, alpha=0.2)  # Keras 3's activations.leaky_relu default
    if name == "softplus":
        return g.op("Softplus", [x], base)
    if name == "silu":
        return g.op("Mul", [x, g.op("Sigmoid", [x], base)], base)
    if name == "gelu":  # the exact form: x * (1 + erf(x / sqrt 2)) / 2
        erf = g.op("Erf", [g.op("Mul", [x, g.const(f"{base}/rsqrt2", 1 / np.sqrt(2))], base)], base)
        half = g.op("Mul", [x, g.const(f"{base}/half", 0.5)], base)
        return g.op("Mul", [half, g.op("Add", [erf, g.const(f"{base}/one", 1.0)], base)], base)
    if name == "relu6":
        return g.op("Clip", [x, g.const(f"{base}/zero", 0.0), g.const(f"{base}/six", 6.0)], base)
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return g.op("HardSigmoid", [x], base, alpha=1 / 6, beta=0.5)
    if name == "hard_silu":  # x * relu6(x + 3) / 6
        return g.op("HardSwish", [x], base)
    raise OnnxExportError(f"activation {name!r} has no ONNX form here")


def _activation_of(layer):
    """The name the layer's config stores for its activation."""
    return layer.get_config().get("activation")


# ---------------------------------------------------------------- layers
def _pads(layer, shape, kernel, dilation=(1, 1)):
    """ONNX pads (top, left, bottom, right) of a sliding window for the layer's padding over (h, w)."""
    before, after = [], []
    for size, k, s, d in zip(shape[:2], kernel, layer.strides, dilation):
        _, b, a = window_geometry(size, (k - 1) * d + 1, s, layer.padding)
        before.append(b)
        after.append(a)
    return before + after


def _weights(layer):
    return {name: np.asarray(value, dtype=np.float64) for name, value in layer.params.items()}


def _conv2d(g, layer, xs, base):
    w = _weights(layer)
    kernel = g.const(f"{base}/kernel", w["kernel"].transpose(3, 2, 0, 1))  # (kh, kw, cin/g, f) -> (f, cin/g, kh, kw)
    inputs = [g.nchw(xs[0], base), kernel] + ([g.const(f"{base}/bias", w["bias"])] if layer.use_bias else [])
    y = g.op("Conv", inputs, base, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
             dilations=list(layer.dilation_rate), group=layer.groups,
             pads=_pads(layer, layer.input_shape, layer.kernel_size, layer.dilation_rate))
    return _activation(g, _activation_of(layer), g.nhwc(y, base), base)


def _depthwise_conv(g, layer, x, kernel, base, bias=None):
    kh, kw, c, dm = kernel.shape
    weight = g.const(f"{base}/depthwise_kernel", kernel.reshape(kh, kw, c * dm).transpose(2, 0, 1)[:, None])
    inputs = [x, weight] + ([bias] if bias is not None else [])
    return g.op("Conv", inputs, base, kernel_shape=[kh, kw], strides=list(layer.strides),
                dilations=list(layer.dilation_rate), group=c,
                pads=_pads(layer, layer.input_shape, (kh, kw), layer.dilation_rate))


def _depthwise(g, layer, xs, base):
    w = _weights(layer)
    bias = g.const(f"{base}/bias", w["bias"]) if layer.use_bias else None
    y = _depthwise_conv(g, layer, g.nchw(xs[0], base), w["kernel"], base, bias)
    return _activation(g, _activation_of(layer), g.nhwc(y, base), base)


def _separable(g, layer, xs, base):
    w = _weights(layer)
    y = _depthwise_conv(g, layer, g.nchw(xs[0], base), w["depthwise_kernel"], base)
    inputs = [y, g.const(f"{base}/pointwise_kernel", w["pointwise_kernel"].transpose(3, 2, 0, 1))]
    if layer.use_bias:
        inputs.append(g.const(f"{base}/bias", w["bias"]))
    y = g.op("Conv", inputs, base, kernel_shape=[1, 1])
    return _activation(g, _activation_of(layer), g.nhwc(y, base), base)


def transpose_pads(h, w, kernel_shape, strides, padding, output_padding=None, dilation=(1, 1)):
    """ONNX ConvTranspose's (pads, output_padding) for the engine's (Keras's)
    Conv2DTranspose over (h, w) inputs with a (kh, kw, ...) kernel: the rows
    and columns the scattered windows cover, less the output's size."""
    from kernels.transpose import transpose_geometry

    geo = transpose_geometry((1, h, w, 1), kernel_shape, tuple(strides), padding,
                             None if output_padding is None else tuple(output_padding), tuple(dilation))
    pads_before, pads_after, extra = [], [], []
    for size, out, k, s, d, top in ((h, geo.out_h, geo.kh, geo.sh, geo.dh, geo.pad_top),
                                    (w, geo.out_w, geo.kw, geo.sw, geo.dw, geo.pad_left)):
        full = (size - 1) * s + (k - 1) * d + 1  # what the scattered windows cover
        if out <= full:
            pads_before.append(top)
            pads_after.append(full - out - top)
            extra.append(0)
        else:  # a stride wider than the kernel: the output ends with cells no window reaches
            pads_before.append(0)
            pads_after.append(0)
            extra.append(out - full)
    return pads_before + pads_after, extra


def _conv_transpose(g, layer, xs, base):
    w = _weights(layer)
    h, wd, _ = layer.input_shape
    kh, kw = w["kernel"].shape[:2]
    pads, extra = transpose_pads(h, wd, w["kernel"].shape, layer.strides, layer.padding, layer.output_padding,
                                 layer.dilation_rate)
    inputs = [g.nchw(xs[0], base), g.const(f"{base}/kernel", w["kernel"].transpose(3, 2, 0, 1))]
    if layer.use_bias:
        inputs.append(g.const(f"{base}/bias", w["bias"]))
    y = g.op("ConvTranspose", inputs, base, kernel_shape=[kh, kw], strides=list(layer.strides),
             dilations=list(layer.dilation_rate), pads=pads, output_padding=extra)
    return _activation(g, _activation_of(layer), g.nhwc(y, base), base)


def _dense(g, layer, xs, base):
    w = _weights(layer)
    y = g.op("MatMul", [xs[0], g.const(f"{base}/kernel", w["kernel"])], base)
    if layer.use_bias:
        y = g.op("Add", [y, g.const(f"{base}/bias", w["bias"])], base)
    return _activation(g, _activation_of(layer), y, base)


def _pool(op_type):
    def convert(g, layer, xs, base):
        attrs = {"kernel_shape": list(layer.pool_size), "strides": list(layer.strides),
                 "pads": _pads(layer, layer.input_shape, layer.pool_size)}
        if op_type == "AveragePool":
            attrs["count_include_pad"] = 0  # Keras averages over the cells inside the image
        return g.nhwc(g.op(op_type, [g.nchw(xs[0], base)], base, **attrs), base)
    return convert


def _global_pool(op_type):
    def convert(g, layer, xs, base):
        return g.op(op_type, [xs[0], g.ints(f"{base}/axes", [1, 2])], base, keepdims=int(layer.keepdims))
    return convert


def _batch_norm(g, layer, xs, base):
    w = _weights(layer)
    channels = w["moving_mean"].shape[0]
    scale = w.get("gamma", np.ones(channels)) / np.sqrt(w["moving_variance"] + layer.epsilon)
    shift = w.get("beta", np.zeros(channels)) - w["moving_mean"] * scale
    y = g.op("Mul", [xs[0], g.const(f"{base}/scale", scale)], base)
    return g.op("Add", [y, g.const(f"{base}/shift", shift)], base)


def _normalize(g, x, axes, epsilon, base):
    mean = g.op("ReduceMean", [x, g.ints(f"{base}/axes", axes)], base, keepdims=1)
    centred = g.op("Sub", [x, mean], base)
    variance = g.op("ReduceMean", [g.op("Mul", [centred, centred], base), g.ints(f"{base}/axes", axes)], base,
                    keepdims=1)
    spread = g.op("Sqrt", [g.op("Add", [variance, g.const(f"{base}/epsilon", epsilon)], base)], base)
    return g.op("Div", [centred, spread], base)


def _scale_shift(g, layer, y, shape, base):
    w = _weights(layer)
    if "gamma" in w:
        y = g.op("Mul", [y, g.const(f"{base}/gamma", w["gamma"].reshape(shape))], base)
    if "beta" in w:
        y = g.op("Add", [y, g.const(f"{base}/beta", w["beta"].reshape(shape))], base)
    return y


def _layer_norm(g, layer, xs, base):
    rank = len(layer.input_shape) + 1
    axes = sorted(a % rank for a in ([layer.axis] if isinstance(layer.axis, int) else layer.axis))
    shape = [layer.input_shape[a - 1] if a in axes else 1 for a in range(1, rank)]
    return _scale_shift(g, layer, _normalize(g, xs[0], axes, layer.epsilon, base), shape, base)


def _group_norm(g, layer, xs, base):
    *space, c = layer.input_shape
    groups = layer.groups
    grouped = g.op("Reshape", [xs[0], g.ints(f"{base}/grouped", [0] * (len(space) + 1) + [groups, c // groups])],
                   base)
    axes = list(range(1, len(space) + 1)) + [len(space) + 2]
    y = _normalize(g, grouped, axes, layer.epsilon, base)
    y = g.op("Reshape", [y, g.ints(f"{base}/back", [0] * (len(space) + 1) + [c])], base)
    return _scale_shift(g, layer, y, [1] * len(space) + [c], base)


def _identity(g, layer, xs, base):
    return g.op("Identity", [xs[0]], base)


def _flatten(g, layer, xs, base):
    return g.op("Flatten", [xs[0]], base, axis=1)  # NHWC rows: Keras's order


def _reshape(g, layer, xs, base):
    return g.op("Reshape", [xs[0], g.ints(f"{base}/shape", [0, *layer.target_shape])], base)


def _zero_padding(g, layer, xs, base):
    (top, bottom), (left, right) = layer.padding
    return g.op("Pad", [xs[0], g.ints(f"{base}/pads", [0, top, left, 0, 0, bottom, right, 0])], base, mode="constant")


def _slice(g, x, top, left, rows, cols, base):
    return g.op("Slice", [x, g.ints(f"{base}/starts", [top, left]), g.ints(f"{base}/ends", [top + rows, left + cols]),
                          g.ints(f"{base}/axes", [1, 2])], base)


def _cropping(g, layer, xs, base):
    (top, bottom), (left, right) = layer.cropping
    h, w = layer.input_shape[:2]
    return _slice(g, xs[0], top, left, h - top - bottom, w - left - right, base)


def _resize(g, x, out_h, out_w, interpolation, base):
    """tf.image.resize's half-pixel bilinear or nearest (Keras's Resizing), by ONNX Resize over NCHW."""
    if interpolation == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    elif interpolation == "nearest":  # TensorFlow's: floor((i + 0.5) * in / out)
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                 "nearest_mode": "round_prefer_ceil"}
    else:
        raise OnnxExportError(f"interpolation {interpolation!r} has no ONNX form here")
    x = g.nchw(x, base)
    y = g.op("Resize", [x, "", "", _sizes(g, x, out_h, out_w, base)], base, **attrs)
    return g.nhwc(y, base)


def _sizes(g, x, out_h, out_w, base):
    """Resize's sizes for an NCHW tensor: its own batch and channels, then (out_h, out_w)."""
    batch_channels = g.op("Slice", [g.op("Shape", [x], base), g.ints(f"{base}/zero", [0]), g.ints(f"{base}/two", [2])],
                          base)
    return g.op("Concat", [batch_channels, g.ints(f"{base}/size", [out_h, out_w])], base, axis=0)


def _resizing(g, layer, xs, base):
    from kernels.resample import aspect_box

    x = xs[0]
    h, w = layer.input_shape[:2]
    if layer.crop_to_aspect_ratio:
        top, left, rows, cols = aspect_box(h, w, layer.height, layer.width)
        if (rows, cols) != (h, w):
            x = _slice(g, x, top, left, rows, cols, base)
    return _resize(g, x, layer.height, layer.width, layer.interpolation, base)


def _center_crop(g, layer, xs, base):
    from kernels.resample import aspect_box

    h, w = layer.input_shape[:2]
    if h < layer.height or w < layer.width:  # smart_resize, as the layer does
        top, left, rows, cols = aspect_box(h, w, layer.height, layer.width)
        return _resize(g, _slice(g, xs[0], top, left, rows, cols, base), layer.height, layer.width, "bilinear", base)
    top, left = layer._start()
    return _slice(g, xs[0], top, left, layer.height, layer.width, base)


def _random_crop(g, layer, xs, base):
    h, w = layer.input_shape[:2]
    top, left, rows, cols = layer.window(h, w, training=False)
    x = _slice(g, xs[0], top, left, rows, cols, base) if (rows, cols) != (h, w) else xs[0]
    if (rows, cols) == (layer.height, layer.width):
        return g.op("Identity", [x], base)
    return _resize(g, x, layer.height, layer.width, "bilinear", base)


def _up_sampling(g, layer, xs, base):
    h, w = layer.input_shape[:2]
    sh, sw = layer.size
    if layer.interpolation == "bilinear":
        return _resize(g, xs[0], h * sh, w * sw, "bilinear", base)
    x = g.nchw(xs[0], base)
    y = g.op("Resize", [x, "", "", _sizes(g, x, h * sh, w * sw, base)], base, mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return g.nhwc(y, base)


def _rescaling(g, layer, xs, base):
    y = g.op("Mul", [xs[0], g.const(f"{base}/scale", np.asarray(layer.scale, dtype=np.float32))], base)
    return g.op("Add", [y, g.const(f"{base}/offset", np.asarray(layer.offset, dtype=np.float32))], base)


def _activation_layer(g, layer, xs, base):
    out = _activation(g, _activation_of(layer), xs[0], base)
    return out if out != xs[0] else g.op("Identity", [xs[0]], base)


def _relu_layer(g, layer, xs, base):
    x = xs[0]
    if layer.negative_slope == 0 and layer.threshold == 0:
        y = g.op("Relu", [x], base)
    else:  # x from the threshold up, negative_slope * (x - threshold) below it
        below = g.op("Mul", [g.op("Sub", [x, g.const(f"{base}/threshold", layer.threshold)], base),
                             g.const(f"{base}/negative_slope", layer.negative_slope)], base)
        y = g.op("Where", [g.op("Less", [x, g.const(f"{base}/threshold", layer.threshold)], base), below, x], base)
    if layer.max_value is not None:
        y = g.op("Min", [y, g.const(f"{base}/max_value", layer.max_value)], base)
    return y


def _softmax_layer(g, layer, xs, base):
    return g.op("Softmax", [xs[0]], base, axis=int(layer.axis))


def _merge(op_type):
    def convert(g, layer, xs, base):
        if op_type in ("Sub", "Mul"):  # two inputs a node
            y = xs[0]
            for x in xs[1:]:
                y = g.op(op_type, [y, x], base)
            return y
        return g.op(op_type, xs, base)
    return convert


def _concatenate(g, layer, xs, base):
    return g.op("Concat", xs, base, axis=int(layer.axis))


CONVERTERS = {
    "Conv2D": _conv2d, "DepthwiseConv2D": _depthwise, "SeparableConv2D": _separable,
    "Conv2DTranspose": _conv_transpose, "Dense": _dense,
    "MaxPooling2D": _pool("MaxPool"), "AveragePooling2D": _pool("AveragePool"),
    "GlobalAveragePooling2D": _global_pool("ReduceMean"), "GlobalMaxPooling2D": _global_pool("ReduceMax"),
    "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm, "GroupNormalization": _group_norm,
    "Dropout": _identity, "SpatialDropout2D": _identity, "Flatten": _flatten, "Reshape": _reshape,
    "ZeroPadding2D": _zero_padding, "Cropping2D": _cropping, "Resizing": _resizing, "CenterCrop": _center_crop,
    "UpSampling2D": _up_sampling, "Rescaling": _rescaling,
    "RandomFlip": _identity, "RandomTranslation": _identity, "RandomRotation": _identity, "RandomZoom": _identity,
    "RandomContrast": _identity, "RandomBrightness": _identity, "RandomCrop": _random_crop,
    "Activation": _activation_layer, "ReLU": _relu_layer, "Softmax": _softmax_layer,
    "LeakyReLU": lambda g, layer, xs, base: g.op("LeakyRelu", xs, base, alpha=float(layer.negative_slope)),
    "ELU": lambda g, layer, xs, base: g.op("Elu", xs, base, alpha=float(layer.alpha)),
    "Add": _merge("Sum"), "Subtract": _merge("Sub"), "Multiply": _merge("Mul"), "Average": _merge("Mean"),
    "Maximum": _merge("Max"), "Minimum": _merge("Min"), "Concatenate": _concatenate,
}


# ---------------------------------------------------------------- the model
def _calls(model):
    """(layer, input tensor keys, output key) for every layer call in order, the
    model's input keys with their sample shapes, and its output keys with names."""
    from .functional import Model

    if isinstance(model, Model):
        inputs = [(id(t), t.name, tuple(t.sample_shape)) for t in model.inputs]
        calls = [(node.layer, [id(t) for t in node.inputs], id(node.output)) for node in model._nodes]
        outputs = [(id(t), name, tuple(t.sample_shape)) for t, name in zip(model._outputs, model.output_names)]
        return inputs, calls, outputs
    if not model.built or not model.layers:
        raise OnnxExportError("export: the model is not built (call it on data, or give it an Input first)")
    calls, key = [], "input"
    for layer in model.layers:
        calls.append((layer, [key], layer.name))
        key = layer.name
    return ([("input", "input", tuple(model.input_shape))], calls,
            [(key, model.layers[-1].name, tuple(model.layers[-1].output_shape))])


def to_onnx(model):
    """The ONNX ModelProto of ``model`` (checked by ``onnx.checker``)."""
    onnx = _onnx()
    from ._version import __version__

    g = _Graph(onnx)
    inputs, calls, outputs = _calls(model)
    names, graph_inputs = {}, []
    for key, name, shape in inputs:
        names[key] = g.name(name)
        graph_inputs.append(onnx.helper.make_tensor_value_info(names[key], onnx.TensorProto.FLOAT, ["batch", *shape]))
    for layer, ins, out in calls:
        convert = CONVERTERS.get(type(layer).__name__)
        if convert is None:
            raise OnnxExportError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX converter; the layers "
                                  f"that export: {', '.join(sorted(CONVERTERS))}")
        names[out] = convert(g, layer, [names[k] for k in ins], layer.name)
    graph_outputs = []
    for key, name, shape in outputs:
        final = g.op("Identity", [names[key]], name, outputs=g.name(f"{name}_output"))
        graph_outputs.append(onnx.helper.make_tensor_value_info(final, onnx.TensorProto.FLOAT, ["batch", *shape]))
    graph = onnx.helper.make_graph(g.nodes, model.name, graph_inputs, graph_outputs, initializer=g.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="cnn-from-scratch", producer_version=__version__)
    proto.ir_version = min(proto.ir_version, 10)  # what ONNX Runtime releases of the last two years read
    onnx.checker.check_model(proto, full_check=True)
    return proto


def load(path):
    """An engine model from the ONNX file ``path`` (see :mod:`cnn.onnx_import`)."""
    from .onnx_import import load as load_onnx

    return load_onnx(path)


def export(model, path):
    """Write ``model`` to ``path`` as ONNX (all or nothing); returns the ModelProto written."""
    from .files import atomic_write_bytes

    proto = to_onnx(model)
    atomic_write_bytes(path, proto.SerializeToString())
    return proto

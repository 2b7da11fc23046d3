"""ONNX import: an ONNX graph of a small CNN (``torch.onnx.export``'s, or any
other exporter's) as an engine model that predicts, trains, saves and is
explained like any other.

    model = cnn.onnx.load("lenet.onnx")      # or cnn.load_model("lenet.onnx")

The engine is NHWC, ONNX's images NCHW: the model built here takes and
gives NHWC arrays (an input of ONNX shape (N, C, H, W) becomes
``cnn.Input((H, W, C))``), and each weight is moved to Keras's layout:

* ``Conv`` -> ``Conv2D`` (``groups``), or ``DepthwiseConv2D`` when each group
  is one input channel; explicit pads that are Keras's 'same' for the input
  size become ``padding='same'``, other pads a ``ZeroPadding2D`` before a
  'valid' convolution; ``ConvTranspose`` -> ``Conv2DTranspose`` when its pads
  are Keras's 'valid' or 'same';
* ``Gemm`` / ``MatMul`` (+ the ``Add`` of its bias) -> ``Dense``. ONNX's
  Flatten of an NCHW tensor orders features (C, H, W), the engine's (H, W,
  C): the rows of the Dense that reads it are permuted so that the products
  line up (exactly; nothing is approximated);
* pooling (``MaxPool``, ``AveragePool``, the global ones and ``ReduceMean``
  over H and W), ``BatchNormalization`` (its statistics kept: it fine-tunes),
  the activations, ``Softmax``, ``Flatten`` / ``Reshape`` to (N, features),
  ``Add`` / ``Sub`` / ``Mul`` / ``Max`` / ``Min`` / ``Sum`` / ``Mean`` of two
  tensors (merge layers, with broadcasting), ``Concat`` over channels,
  ``Dropout``, ``Pad`` with zeros, ``Resize`` as ``UpSampling2D`` or
  ``Resizing``, a scalar or per-channel ``Mul`` / ``Add`` / ``Sub`` / ``Div``
  of a constant as ``Rescaling``.

Anything else is refused with the operator and the node's name, never
approximated. The file is read as the other readers read theirs
(:mod:`cnn.limits`): a regular file, parsed from its bytes alone (ONNX's
external data, which names other files, is refused and never opened), every
tensor's declared size checked against the bytes present before it is
decoded, counts and nesting within limits, every node reading only what
came before it.
"""
import re

import numpy as np

from .errors import ModelFileError
from .limits import MAX_NODES, MAX_WEIGHT_BYTES, read_regular

MAX_ONNX_BYTES = 2 << 30   # protobuf's own limit for one message
MAX_TENSOR_ELEMENTS = 1 << 30
ELEMENT_TYPES = {1: np.float32, 11: np.float64, 6: np.int32, 7: np.int64}  # TensorProto data types read


def _onnx():
    from .onnx import _onnx as get

    return get()


# ---------------------------------------------------------------- reading, checked
def read(path):
    """The ONNX ModelProto in ``path``, checked (see the module's text) before any tensor is decoded."""
    onnx = _onnx()
    data = read_regular(path, ModelFileError, MAX_ONNX_BYTES)
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError and the C implementation's own
        raise ModelFileError(f"{path}: not an ONNX file (its protobuf does not parse: {err})") from None
    if not proto.HasField("graph"):
        raise ModelFileError(f"{path}: not an ONNX model (no graph)")
    _check(proto, path)
    return proto


def _check_tensor(tensor, path, where):
    """A TensorProto's declared size against its bytes, before it is decoded."""
    if tensor.data_location == 1 or tensor.external_data:
        raise ModelFileError(f"{path}: {where} {tensor.name!r} keeps its data in an external file "
                             f"({', '.join(f'{e.key}={e.value!r}' for e in tensor.external_data)[:200]}); refused: "
                             "a model is read from the file it names only. Write the weights into the file: "
                             "torch.onnx.export(..., external_data=False), or onnx.save_model(model, path, "
                             "save_as_external_data=False)")
    if tensor.data_type not in ELEMENT_TYPES:
        raise ModelFileError(f"{path}: {where} {tensor.name!r} has ONNX data type {tensor.data_type}; the engine "
                             "reads float32, float64, int32 and int64 tensors")
    if len(tensor.dims) > 8 or any(d < 0 for d in tensor.dims):
        raise ModelFileError(f"{path}: {where} {tensor.name!r} declares dims {list(tensor.dims)[:10]}")
    count = 1
    for d in tensor.dims:
        count *= int(d)
    if count > MAX_TENSOR_ELEMENTS:
        raise ModelFileError(f"{path}: {where} {tensor.name!r} declares {count:,} elements, more than "
                             f"{MAX_TENSOR_ELEMENTS:,}")
    itemsize = np.dtype(ELEMENT_TYPES[tensor.data_type]).itemsize
    if tensor.HasField("raw_data"):
        present = len(tensor.raw_data) // itemsize if len(tensor.raw_data) % itemsize == 0 else -1
    else:
        present = {1: len(tensor.float_data), 11: len(tensor.double_data), 6: len(tensor.int32_data),
                   7: len(tensor.int64_data)}[tensor.data_type]
    if present != count:
        raise ModelFileError(f"{path}: {where} {tensor.name!r} declares dims {list(tensor.dims)} ({count:,} "
                             f"elements) but holds {'a broken number of bytes' if present < 0 else f'{present:,}'}")
    return count * itemsize


def _check(proto, path):
    graph = proto.graph
    if proto.functions:
        raise ModelFileError(f"{path}: the model defines its own functions ({proto.functions[0].name!r}); the "
                             "engine reads plain graphs of ONNX operators")
    for opset in proto.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise ModelFileError(f"{path}: operators of domain {opset.domain!r} are not ONNX's own; not in the engine")
    if len(graph.node) > MAX_NODES or len(graph.initializer) > MAX_NODES or len(graph.input) > MAX_NODES:
        raise ModelFileError(f"{path}: {len(graph.node):,} nodes and {len(graph.initializer):,} initializers; "
                             f"the engine reads at most {MAX_NODES:,} of each")
    if graph.sparse_initializer:
        raise ModelFileError(f"{path}: sparse initializers are not read")
    total = sum(_check_tensor(t, path, "initializer") for t in graph.initializer)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type in (5, 10) or attribute.g.node or attribute.graphs:  # GRAPH, GRAPHS
                raise ModelFileError(f"{path}: node {node.name!r} ({node.op_type}) holds a sub-graph; the engine "
                                     "reads graphs without control flow")
            if attribute.type == 4 or attribute.HasField("t"):  # TENSOR (a Constant's value)
                total += _check_tensor(attribute.t, path, f"node {node.name!r} attribute {attribute.name!r}")
            if attribute.type == 9 or attribute.tensors:
                raise ModelFileError(f"{path}: node {node.name!r} has a list of tensors; not read")
    if total > MAX_WEIGHT_BYTES:
        raise ModelFileError(f"{path}: {total:,} bytes of tensors, more than the {MAX_WEIGHT_BYTES:,} a model may have")
    defined = {t.name for t in graph.initializer} | {t.name for t in graph.input} | {""}
    for node in graph.node:
        missing = [name for name in node.input if name not in defined]
        if missing:
            raise ModelFileError(f"{path}: node {node.name!r} ({node.op_type}) reads {missing[0]!r}, which no "
                                 "earlier node makes (an undefined input, or a cycle)")
        defined.update(node.output)
    for output in graph.output:
        if output.name not in defined:
            raise ModelFileError(f"{path}: the graph's output {output.name!r} is made by no node")


# ---------------------------------------------------------------- building
def _attrs(node):
    """A node's attributes by name, a string attribute as text (ONNX stores them as bytes)."""
    onnx = _onnx()
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in values.items()}


class _Tensor:
    """An engine tensor for an ONNX one: ``shape`` is ONNX's (N first, NCHW for
    images); ``chw`` is (C, H, W) when the features of a 2-D tensor are an NCHW
    image flattened in ONNX's order (the Dense that reads it permutes its rows)."""

    def __init__(self, value, shape, chw=None, nhwc=False):
        self.value, self.shape, self.chw, self.nhwc = value, tuple(shape), chw, nhwc

    @property
    def image(self):
        """An NCHW image (ONNX's layout for Conv); ``nhwc`` marks a 4-D tensor already in the engine's
        order (the engine's own exports keep NHWC between the Transposes around each convolution)."""
        return len(self.shape) == 4 and not self.nhwc


def _same_pads(size, kernel, stride, dilation):
    from kernels.geometry import window_geometry

    _, before, after = window_geometry(size, (kernel - 1) * dilation + 1, stride, "same")
    return before, after


class _Importer:
    def __init__(self, proto, path):
        from .layers import base

        self.proto, self.path, self.graph = proto, path, proto.graph
        self.consts, self.tensors, self.names = {}, {}, set()
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.check_name = base.check_name
        consumers = {}
        for node in self.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        self.consumers = consumers
        self.skip = set()  # nodes folded into an earlier one (a MatMul's bias Add)
        self.shape_values = {}  # the tensors of shape arithmetic: their values, None for the batch size

    # -- helpers
    def fail(self, node, why):
        return ModelFileError(f"{self.path}: node {node.name or '(unnamed)'!r} ({node.op_type}): {why}")

    def layer_name(self, node):
        """A layer name (what the engine accepts) from the node's, unique in the model."""
        given = node if isinstance(node, str) else (node.name or node.op_type)
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", given).strip("_.")[:200] or "layer"
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def const(self, name, node=None, what="a constant"):
        if name not in self.consts:
            raise self.fail(node, f"its input {name!r} must be {what} (a weight of the file), and is computed")
        return self.consts[name]

    def tensor(self, name, node):
        if name not in self.tensors:
            if name in self.consts:
                raise self.fail(node, f"reads the constant {name!r} where the engine needs a layer's output")
            raise self.fail(node, f"reads {name!r}, which no layer the engine built makes")
        return self.tensors[name]

    def apply(self, layer, x, node, weights=None):
        """Call ``layer`` on the engine tensor(s) ``x`` and set its weights (Keras's layout and order)."""
        from .errors import InputError

        try:
            out = layer(x)
            if weights is not None:
                layer.set_weights([np.asarray(w, dtype=layer.params[name].dtype)
                                   for w, name in zip(weights, layer.params)])
        except (InputError, ValueError) as err:
            raise self.fail(node, str(err)) from None
        return out

    def onnx_shape(self, engine_shape, image):
        """ONNX's shape (batch first) of an engine output: NHWC images back to NCHW."""
        shape = (None, *engine_shape)
        return (None, shape[3], shape[1], shape[2]) if image and len(shape) == 4 else shape

    def put(self, node, value, image=None, chw=None, nhwc=None, index=0):
        first = self.tensors.get(node.input[0])
        image = (first is not None and first.image) if image is None else image
        nhwc = (first is not None and first.nhwc and not image) if nhwc is None else nhwc
        shape = self.onnx_shape(tuple(value.sample_shape), image)
        self.tensors[node.output[index]] = _Tensor(value, shape, chw, nhwc)

    # -- the model
    def model(self):
        from . import layers
        from .functional import Model

        for tensor in self.graph.initializer:
            self.consts[tensor.name] = _onnx().numpy_helper.to_array(tensor)
        inputs = []
        for value_info in self.graph.input:
            if value_info.name in self.consts:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]
            own = self.proto.producer_name == "cnn-from-scratch"  # the engine's own order, whatever the rank
            if (len(dims) not in (2, 4) and not (own and len(dims) >= 2)) or any(d is None or d <= 0
                                                                                for d in dims[1:]):
                raise ModelFileError(f"{self.path}: input {value_info.name!r} has shape {dims}; the engine takes "
                                     "(N, C, H, W) images or (N, features) rows with the sizes after N fixed")
            readers = self.consumers.get(value_info.name, [])
            # NHWC: a file the engine wrote (its interface is NHWC), or every reader transposes it to NCHW
            nhwc = len(dims) == 4 and (own or bool(readers) and all(
                r.op_type == "Transpose" and list(_attrs(r).get("perm", [])) == [0, 3, 1, 2] for r in readers))
            sample = (dims[2], dims[3], dims[1]) if len(dims) == 4 and not nhwc else tuple(dims[1:])
            name = self.layer_name(value_info.name or "input")
            tensor = layers.Input(sample, name=name)
            inputs.append(tensor)
            self.tensors[value_info.name] = _Tensor(tensor, (None, *dims[1:]), nhwc=nhwc)
        if not inputs:
            raise ModelFileError(f"{self.path}: the graph has no input that is not a weight")
        for node in self.graph.node:
            if id(node) in self.skip:
                continue
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                raise self.fail(node, "this operator is not in the engine (it reads the operators of small CNNs: "
                                      + ", ".join(sorted(n[3:] for n in dir(self) if n.startswith("op_"))) + ")")
            handler(node, _attrs(node))
        outputs = []
        for value_info in self.graph.output:
            if value_info.name not in self.tensors:
                raise ModelFileError(f"{self.path}: the output {value_info.name!r} is a constant, not a layer's")
            outputs.append(self.tensors[value_info.name].value)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.graph.name or "onnx_model").strip("_.")[:200] or "onnx_model"
        model = Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                      name=name)
        return model

    # -- constants
    def op_Constant(self, node, a):
        onnx = _onnx()
        if "value" in a:
            self.consts[node.output[0]] = onnx.numpy_helper.to_array(a["value"])
        elif "value_float" in a or "value_floats" in a:
            self.consts[node.output[0]] = np.asarray(a.get("value_float", a.get("value_floats")), dtype=np.float32)
        elif "value_int" in a or "value_ints" in a:
            self.consts[node.output[0]] = np.asarray(a.get("value_int", a.get("value_ints")), dtype=np.int64)
        else:
            raise self.fail(node, "a Constant the engine cannot read (sparse or string)")

    # -- shape arithmetic (x.view(x.size(0), -1)): values known but for the batch (None)
    def _shape_value(self, name, node):
        if name in self.shape_values:
            return self.shape_values[name]
        if name in self.consts:
            return [int(v) for v in np.asarray(self.consts[name]).reshape(-1)]
        raise self.fail(node, f"{name!r} is neither a shape nor a constant")

    def op_Shape(self, node, a):
        shape = list(self.tensor(node.input[0], node).shape)
        self.shape_values[node.output[0]] = shape[a.get("start", 0):a.get("end", len(shape))]

    def op_Gather(self, node, a):
        if node.input[0] not in self.shape_values or node.input[1] not in self.consts or a.get("axis", 0) != 0:
            raise self.fail(node, "a Gather the engine reads only as part of shape arithmetic (x.size(0))")
        values, index = self.shape_values[node.input[0]], np.asarray(self.consts[node.input[1]])
        self.shape_values[node.output[0]] = [values[int(i)] for i in index.reshape(-1)]

    def op_Unsqueeze(self, node, a):
        if node.input[0] not in self.shape_values and node.input[0] not in self.consts:
            raise self.fail(node, "an Unsqueeze the engine reads only as part of shape arithmetic")
        self.shape_values[node.output[0]] = self._shape_value(node.input[0], node)

    op_Squeeze = op_Cast = op_Unsqueeze

    def op_Slice(self, node, a):
        if node.input[0] in self.tensors:
            return self._crop(node)
        if node.input[0] not in self.shape_values:
            raise self.fail(node, "a Slice the engine reads only as part of shape arithmetic")
        values = self.shape_values[node.input[0]]
        starts, ends = (int(self._shape_value(name, node)[0]) for name in node.input[1:3])
        self.shape_values[node.output[0]] = values[starts:min(ends, len(values))]

    def op_Transpose(self, node, a):
        """NHWC <-> NCHW around a convolution (how the engine exports): the same engine tensor."""
        x = self.tensor(node.input[0], node)
        perm = list(a.get("perm", []))
        if x.nhwc and perm == [0, 3, 1, 2]:
            n, h, w, c = x.shape
            self.tensors[node.output[0]] = _Tensor(x.value, (n, c, h, w))
        elif x.image and perm == [0, 2, 3, 1]:
            n, c, h, w = x.shape
            self.tensors[node.output[0]] = _Tensor(x.value, (n, h, w, c), nhwc=True)
        else:
            raise self.fail(node, f"a transpose {perm} of a {len(x.shape)}-D tensor; the engine reads only the "
                                  "NHWC <-> NCHW pair around a convolution")

    def _crop(self, node):
        """A Slice of an image's height and width (steps 1): Cropping2D."""
        from . import layers

        x = self.tensor(node.input[0], node)
        if len(x.shape) != 4 or len(node.input) < 4 or (len(node.input) > 4 and node.input[4]):
            raise self.fail(node, "a slice the engine reads only over an image's height and width, steps of 1")
        starts, ends, axes = (self._shape_value(name, node) for name in node.input[1:4])
        spatial = [1, 2] if x.nhwc else [2, 3]
        if sorted(int(v) % 4 for v in axes) != spatial:
            raise self.fail(node, f"a slice over axes {axes}; the engine crops an image's height and width")
        box = {}
        for axis, start, end in zip(axes, starts, ends):
            size = x.shape[int(axis) % 4]
            start, end = max(0, min(int(start), size)), max(0, min(int(end), size))
            box[int(axis) % 4] = (start, size - end)
        layer = layers.Cropping2D((box[spatial[0]], box[spatial[1]]), name=self.layer_name(node))
        self.put(node, self.apply(layer, x.value, node))

    def op_Identity(self, node, a):
        if node.input[0] in self.consts:
            self.consts[node.output[0]] = self.consts[node.input[0]]
        else:
            self.tensors[node.output[0]] = self.tensor(node.input[0], node)

    # -- convolutions
    def _padding(self, node, x, kernel, strides, dilations, a):
        """('same' | 'valid', zero pads ((t, b), (l, r)) to put before, or None) for ONNX's pads."""
        h, w = x.shape[2:]
        auto = a.get("auto_pad", "NOTSET")
        if auto == "VALID":
            return "valid", None
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s, d in zip((h, w), kernel, strides, dilations):
                before, after = _same_pads(size, k, s, d)
                pads.append((before, after) if auto == "SAME_UPPER" else (after, before))
            top_bottom, left_right = pads
            pads = [top_bottom[0], left_right[0], top_bottom[1], left_right[1]]
        else:
            pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or any(p < 0 for p in pads):
            raise self.fail(node, f"pads {pads}: the engine takes four pads of 0 or more (2-D images)")
        if not any(pads):
            return "valid", None
        same = [_same_pads(size, k, s, d) for size, k, s, d in zip((h, w), kernel, strides, dilations)]
        if (pads[0], pads[2]) == same[0] and (pads[1], pads[3]) == same[1]:
            return "same", None
        return "valid", ((pads[0], pads[2]), (pads[1], pads[3]))

    def _pad_first(self, node, x, zero_pads):
        from . import layers

        if zero_pads is None:
            return x
        layer = layers.ZeroPadding2D(zero_pads, name=self.layer_name(node) + "_pad")
        value = self.apply(layer, x.value, node)
        return _Tensor(value, self.onnx_shape(tuple(value.sample_shape), True))

    def _window(self, node, a, kernel):
        strides = tuple(a.get("strides", [1, 1]))
        dilations = tuple(a.get("dilations", [1, 1]))
        if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2:
            raise self.fail(node, "the engine's convolutions and pools are 2-D")
        return strides, dilations

    def op_Conv(self, node, a):
        from . import layers

        x = self.tensor(node.input[0], node)
        if not x.image:
            raise self.fail(node, f"a convolution of a {len(x.shape)}-D tensor; the engine's are 2-D over images")
        w = self.const(node.input[1], node, "a weight")
        bias = self.const(node.input[2], node, "a weight") if len(node.input) > 2 and node.input[2] else None
        out_c, per_group, kh, kw = w.shape
        kernel = tuple(a.get("kernel_shape", (kh, kw)))
        strides, dilations = self._window(node, a, kernel)
        group = int(a.get("group", 1))
        padding, zero = self._padding(node, x, kernel, strides, dilations, a)
        x = self._pad_first(node, x, zero)
        cin = x.shape[1]
        common = dict(strides=strides, padding=padding, dilation_rate=dilations, use_bias=bias is not None,
                      name=self.layer_name(node))
        if group > 1 and group == cin and per_group == 1:
            multiplier = out_c // cin
            layer = layers.DepthwiseConv2D((kh, kw), depth_multiplier=multiplier, **common)
            weights = [w.reshape(cin, multiplier, kh, kw).transpose(2, 3, 0, 1)]
        else:
            layer = layers.Conv2D(out_c, (kh, kw), groups=group, **common)
            weights = [w.transpose(2, 3, 1, 0)]
        if bias is not None:
            weights.append(bias)
        self.put(node, self.apply(layer, x.value, node, weights), image=True)

    def op_ConvTranspose(self, node, a):
        from . import layers
        from .onnx import transpose_pads

        x = self.tensor(node.input[0], node)
        w = self.const(node.input[1], node, "a weight")
        bias = self.const(node.input[2], node, "a weight") if len(node.input) > 2 and node.input[2] else None
        if not x.image or w.ndim != 4:
            raise self.fail(node, "the engine's transposed convolutions are 2-D over images")
        if int(a.get("group", 1)) != 1 or "output_shape" in a:
            raise self.fail(node, "group and output_shape are not read (Conv2DTranspose has neither)")
        cin, out_c, kh, kw = w.shape
        strides, dilations = self._window(node, a, (kh, kw))
        pads, extra = list(a.get("pads", [0, 0, 0, 0])), list(a.get("output_padding", [0, 0]))
        h, wd = x.shape[2:]
        candidates = [(padding, op) for padding in ("valid", "same")
                      for op in [None] + [(i, j) for i in range(strides[0]) for j in range(strides[1])]]
        for padding, output_padding in candidates:  # Keras's settings whose pads these are
            try:
                if transpose_pads(h, wd, (kh, kw, out_c, cin), strides, padding, output_padding,
                                  dilations) == (pads, extra):
                    break
            except ValueError:
                continue
        else:
            raise self.fail(node, f"pads {pads} with output_padding {extra} are neither Keras's 'valid' nor 'same' "
                                  "for this input; Conv2DTranspose takes only those")
        layer = layers.Conv2DTranspose(out_c, (kh, kw), strides=strides, padding=padding, dilation_rate=dilations,
                                       output_padding=output_padding, use_bias=bias is not None,
                                       name=self.layer_name(node))
        weights = [w.transpose(2, 3, 1, 0)] + ([bias] if bias is not None else [])
        self.put(node, self.apply(layer, x.value, node, weights), image=True)

    # -- dense
    def _dense(self, node, x, kernel, bias):
        from . import layers

        if len(x.shape) != 2:
            raise self.fail(node, f"a product of a {len(x.shape)}-D tensor; the engine's Dense reads (N, features) "
                                  "here")
        if x.chw is not None:  # features in ONNX's (C, H, W) order; the engine flattens (H, W, C)
            c, h, w = x.chw
            kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(c * h * w, -1)
        layer = layers.Dense(kernel.shape[1], use_bias=bias is not None, name=self.layer_name(node))
        weights = [kernel] + ([np.broadcast_to(bias, (kernel.shape[1],))] if bias is not None else [])
        self.put(node, self.apply(layer, x.value, node, weights), image=False)

    def op_Gemm(self, node, a):
        x = self.tensor(node.input[0], node)
        if a.get("transA", 0):
            raise self.fail(node, "transA=1: the engine's Dense multiplies the rows of its input")
        b = self.const(node.input[1], node, "a weight")
        kernel = (b.T if a.get("transB", 0) else b) * a.get("alpha", 1.0)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node.input[2], node, "a weight").reshape(-1) * a.get("beta", 1.0)
            if bias.size not in (1, kernel.shape[1]):
                raise self.fail(node, f"a bias of {bias.size} values for {kernel.shape[1]} outputs")
        self._dense(node, x, kernel, bias)

    def op_MatMul(self, node, a):
        x = self.tensor(node.input[0], node)
        kernel = self.const(node.input[1], node, "a weight")
        if kernel.ndim != 2:
            raise self.fail(node, "a product with a weight that is not a matrix")
        bias = None
        readers = self.consumers.get(node.output[0], [])
        if len(readers) == 1 and readers[0].op_type == "Add":  # the bias of a Linear exported as MatMul + Add
            add = readers[0]
            other = [n for n in add.input if n != node.output[0]]
            if len(other) == 1 and other[0] in self.consts and self.consts[other[0]].size == kernel.shape[1]:
                bias = self.consts[other[0]].reshape(-1)
                self.skip.add(id(add))
        self._dense(node, x, kernel, bias)
        if bias is not None:
            self.tensors[readers[0].output[0]] = self.tensors[node.output[0]]

    # -- elementwise
    def _activation(self, node, layer):
        x = self.tensor(node.input[0], node)
        self.put(node, self.apply(layer, x.value, node), chw=x.chw)

    def _named(self, node, name):
        from . import layers

        self._activation(node, layers.Activation(name, name=self.layer_name(node)))

    def op_Relu(self, node, a):
        self._named(node, "relu")

    def op_Tanh(self, node, a):
        self._named(node, "tanh")

    def op_Sigmoid(self, node, a):
        self._named(node, "sigmoid")

    def op_Softplus(self, node, a):
        self._named(node, "softplus")

    def op_HardSwish(self, node, a):
        self._named(node, "hard_silu")

    def op_HardSigmoid(self, node, a):
        if not (np.isclose(a.get("alpha", 0.2), 1 / 6) and np.isclose(a.get("beta", 0.5), 0.5)):
            raise self.fail(node, f"alpha {a.get('alpha', 0.2)}, beta {a.get('beta', 0.5)}: the engine's "
                                  "hard_sigmoid is relu6(x + 3) / 6 (alpha 1/6, beta 0.5)")
        self._named(node, "hard_sigmoid")

    def op_Gelu(self, node, a):
        if a.get("approximate", "none") != "none":
            raise self.fail(node, "the tanh approximation of GELU is not in the engine (the exact one is)")
        self._named(node, "gelu")

    def op_Elu(self, node, a):
        from . import layers

        self._activation(node, layers.ELU(alpha=float(a.get("alpha", 1.0)), name=self.layer_name(node)))

    def op_LeakyRelu(self, node, a):
        from . import layers

        self._activation(node, layers.LeakyReLU(negative_slope=float(a.get("alpha", 0.01)),
                                                name=self.layer_name(node)))

    def op_Clip(self, node, a):
        from . import layers

        low = a.get("min") if self.opset < 11 else (
            float(self.const(node.input[1], node)) if len(node.input) > 1 and node.input[1] else None)
        high = a.get("max") if self.opset < 11 else (
            float(self.const(node.input[2], node)) if len(node.input) > 2 and node.input[2] else None)
        if low != 0:
            raise self.fail(node, f"a clip from {low}: the engine's ReLU layers clip from 0")
        layer = layers.Activation("relu6", name=self.layer_name(node)) if high == 6 else \
            layers.ReLU(max_value=high, name=self.layer_name(node))
        self._activation(node, layer)

    def op_Softmax(self, node, a):
        from . import layers

        x = self.tensor(node.input[0], node)
        axis = int(a.get("axis", 1 if self.opset < 13 else -1))
        channels = 3 if x.nhwc else 1
        if axis % len(x.shape) != channels or (self.opset < 13 and len(x.shape) != 2):
            raise self.fail(node, f"softmax over axis {axis} of a {len(x.shape)}-D tensor; the engine's runs over "
                                  "the features (or the channels of an image)")
        self._activation(node, layers.Softmax(axis=-1, name=self.layer_name(node)))

    def op_Dropout(self, node, a):
        from . import layers

        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            raise self.fail(node, "its mask output is read; the engine's Dropout has none")
        rate = a.get("ratio", 0.5)
        if len(node.input) > 1 and node.input[1]:
            rate = float(self.const(node.input[1], node))
        x = self.tensor(node.input[0], node)
        self.put(node, self.apply(layers.Dropout(float(rate), name=self.layer_name(node)), x.value, node), chw=x.chw)

    # -- pooling
    def _pool(self, node, a, cls):
        x = self.tensor(node.input[0], node)
        if not x.image:
            raise self.fail(node, "pooling of a tensor that is not an image")
        kernel = tuple(a["kernel_shape"])
        strides, dilations = self._window(node, a, kernel)
        if dilations != (1, 1):
            raise self.fail(node, "dilated pooling is not in the engine")
        padding, zero = self._padding(node, x, kernel, strides, (1, 1), a)
        if zero is not None:
            raise self.fail(node, f"pads {list(a.get('pads'))} are not Keras's 'same' for this input; the engine's "
                                  "pools pad as Keras does only")
        if cls.__name__ == "AveragePooling2D" and padding == "same" and a.get("count_include_pad", 0):
            raise self.fail(node, "count_include_pad=1 averages the padding zeros; Keras's 'same' pooling does not")
        h, w = x.shape[2:]
        if a.get("ceil_mode", 0) and padding == "valid" and any(
                (size - k) % s for size, k, s in zip((h, w), kernel, strides)):
            raise self.fail(node, "ceil_mode=1 adds a partial window here; Keras's pools do not")
        layer = cls(pool_size=kernel, strides=strides, padding=padding, name=self.layer_name(node))
        self.put(node, self.apply(layer, x.value, node), image=True)

    def op_MaxPool(self, node, a):
        from . import layers

        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "its indices output is not in the engine")
        self._pool(node, a, layers.MaxPooling2D)

    def op_AveragePool(self, node, a):
        from . import layers

        self._pool(node, a, layers.AveragePooling2D)

    def _global(self, node, cls, keepdims=True):
        x = self.tensor(node.input[0], node)
        if len(x.shape) != 4:
            raise self.fail(node, "global pooling of a tensor that is not an image")
        layer = cls(keepdims=keepdims, name=self.layer_name(node))
        self.put(node, self.apply(layer, x.value, node), image=keepdims and x.image, nhwc=keepdims and x.nhwc)

    def op_GlobalAveragePool(self, node, a):
        from . import layers

        self._global(node, layers.GlobalAveragePooling2D)

    def op_GlobalMaxPool(self, node, a):
        from . import layers

        self._global(node, layers.GlobalMaxPooling2D)

    def _reduce(self, node, a, cls):
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.const(node.input[1], node).tolist()
        x = self.tensor(node.input[0], node)
        spatial = [1, 2] if x.nhwc else [2, 3]
        if len(x.shape) != 4 or sorted(int(v) % 4 for v in (axes or [])) != spatial:
            raise self.fail(node, f"a reduction over axes {axes}; the engine reads one over an image's height and "
                                  "width (global pooling)")
        self._global(node, cls, keepdims=bool(a.get("keepdims", 1)))

    def op_ReduceMean(self, node, a):
        from . import layers

        self._reduce(node, a, layers.GlobalAveragePooling2D)

    def op_ReduceMax(self, node, a):
        from . import layers

        self._reduce(node, a, layers.GlobalMaxPooling2D)

    # -- normalization
    def op_BatchNormalization(self, node, a):
        from . import layers

        if a.get("training_mode", 0) or (len(node.output) > 1 and any(node.output[1:])):
            raise self.fail(node, "a BatchNormalization exported in training mode; export the model in eval mode")
        x = self.tensor(node.input[0], node)
        if len(x.shape) not in (2, 4):
            raise self.fail(node, "batch normalization of a tensor that is neither (N, C) nor (N, C, H, W)")
        scale, shift, mean, var = (self.const(name, node, "a weight") for name in node.input[1:5])
        layer = layers.BatchNormalization(epsilon=float(a.get("epsilon", 1e-5)),
                                          momentum=float(a.get("momentum", 0.9)), name=self.layer_name(node))
        self.put(node, self.apply(layer, x.value, node, [scale, shift, mean, var]), chw=x.chw)

    # -- shapes
    def _flatten(self, node, x):
        from . import layers

        if x.nhwc:  # already the engine's order
            value = self.apply(layers.Flatten(name=self.layer_name(node)), x.value, node)
            self.put(node, value, image=False, nhwc=False)
            return
        if not x.image:
            self.tensors[node.output[0]] = x
            return
        c, h, w = x.shape[1:]
        value = self.apply(layers.Flatten(name=self.layer_name(node)), x.value, node)
        self.put(node, value, image=False, chw=(c, h, w) if h * w > 1 else None)

    def op_Flatten(self, node, a):
        x = self.tensor(node.input[0], node)
        if int(a.get("axis", 1)) != 1:
            raise self.fail(node, f"a flatten from axis {a.get('axis')}; the engine keeps the batch axis alone")
        self._flatten(node, x)

    def op_Reshape(self, node, a):
        x = self.tensor(node.input[0], node)
        target = [None if v is None else int(v) for v in self._shape_value(node.input[1], node)]
        features = int(np.prod(x.shape[1:]))
        if len(target) == 2:
            batch, rest = target
            batch_ok = batch is None or batch in (-1, 0) or batch > 0  # None: x.size(0); a number: the example's
            if batch_ok and rest is not None and (rest == features or (rest == -1 and batch != -1)):
                self._flatten(node, x)
                return
        if not x.image and len(target) >= 2 and target[0] in (None, -1, 0) and all(
                v is not None and (v > 0 or v == -1) for v in target[1:]) and target[1:].count(-1) <= 1:
            from . import layers  # the engine's own order on both sides: a Reshape of the samples

            value = self.apply(layers.Reshape(tuple(target[1:]), name=self.layer_name(node)), x.value, node)
            self.put(node, value, image=False, nhwc=False)
            return
        raise self.fail(node, f"a reshape of {x.shape} to {target}; the engine reads reshapes to (N, features), "
                              "or of tensors already in its own order")

    def op_Concat(self, node, a):
        from . import layers

        if any(name in self.shape_values for name in node.input):  # shape arithmetic
            self.shape_values[node.output[0]] = [v for name in node.input for v in self._shape_value(name, node)]
            return
        xs = [self.tensor(name, node) for name in node.input]
        rank = len(xs[0].shape)
        channels = 3 if xs[0].nhwc else 1
        if int(a["axis"]) % rank != channels or any(len(x.shape) != rank or x.chw or x.nhwc != xs[0].nhwc
                                                     for x in xs):
            raise self.fail(node, f"a concatenation over axis {a['axis']}; the engine's runs over channels or "
                                  "features")
        layer = layers.Concatenate(axis=-1, name=self.layer_name(node))
        self.put(node, self.apply(layer, [x.value for x in xs], node), image=xs[0].image)

    def op_Pad(self, node, a):
        from . import layers

        x = self.tensor(node.input[0], node)
        mode = a.get("mode", "constant")
        pads = a.get("pads") if self.opset < 11 else self.const(node.input[1], node, "constant pads").tolist()
        value = a.get("value", 0.0) if self.opset < 11 else (
            float(self.const(node.input[2], node)) if len(node.input) > 2 and node.input[2] else 0.0)
        if len(node.input) > 3 and node.input[3]:
            raise self.fail(node, "pads over chosen axes are not read")
        kept = (0, 3, 4, 7) if x.nhwc else (0, 1, 4, 5)  # the batch and the channels, not padded
        if mode != "constant" or value != 0 or len(x.shape) != 4 or len(pads) != 8 or any(pads[i] for i in kept) \
                or min(pads) < 0:
            raise self.fail(node, f"mode {mode!r}, value {value}, pads {pads}: the engine pads images with zeros "
                                  "around their height and width (ZeroPadding2D)")
        (t, l, b, r) = (pads[1], pads[2], pads[5], pads[6]) if x.nhwc else (pads[2], pads[3], pads[6], pads[7])
        layer = layers.ZeroPadding2D(((t, b), (l, r)), name=self.layer_name(node))
        self.put(node, self.apply(layer, x.value, node))

    def op_Resize(self, node, a):
        from . import layers

        x = self.tensor(node.input[0], node)
        if not x.image:
            raise self.fail(node, "a resize of a tensor that is not an image")
        h, w = x.shape[2:]
        scales = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        sizes = None
        if len(node.input) > 3 and node.input[3]:
            known = self._shape_value(node.input[3], node)
            sizes = np.array([-1 if v is None else v for v in known])
        if sizes is not None and sizes.size == 4:
            out_h, out_w = int(sizes[2]), int(sizes[3])
        elif scales is not None and scales.size == 4 and scales[0] == scales[1] == 1:
            out_h, out_w = int(np.floor(h * scales[2])), int(np.floor(w * scales[3]))
        else:
            raise self.fail(node, "scales or sizes must be constants of an NCHW image, the batch and channels kept")
        mode = a.get("mode", "nearest")
        transform = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        name = self.layer_name(node)
        whole = out_h % h == 0 and out_w % w == 0
        if mode == "nearest" and transform == "asymmetric" and nearest == "floor" and whole:
            layer = layers.UpSampling2D((out_h // h, out_w // w), interpolation="nearest", name=name)
        elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel") and (out_h > 1 and out_w > 1):
            layer = layers.Resizing(out_h, out_w, interpolation="bilinear", name=name)
        elif mode == "nearest" and transform == "half_pixel" and nearest == "round_prefer_ceil":
            layer = layers.Resizing(out_h, out_w, interpolation="nearest", name=name)
        else:
            raise self.fail(node, f"mode {mode!r} with {transform!r} coordinates ({nearest!r}): not TensorFlow's "
                                  "resize, which the engine's UpSampling2D and Resizing compute")
        self.put(node, self.apply(layer, x.value, node), image=True)

    # -- two tensors
    def _merge(self, node, cls):
        xs = [self.tensor(name, node) for name in node.input]
        if len({len(x.shape) for x in xs}) != 1 or any(x.chw != xs[0].chw or x.nhwc != xs[0].nhwc for x in xs):
            raise self.fail(node, "its inputs are tensors of different kinds")
        layer = cls(name=self.layer_name(node))
        self.put(node, self.apply(layer, [x.value for x in xs], node), image=xs[0].image, chw=xs[0].chw)

    def _rescale(self, node, scale=1.0, offset=0.0):
        """x * scale + offset with a constant scalar or per-channel scale and offset: Rescaling."""
        from . import layers

        x = self.tensor(node.input[0] if node.input[0] not in self.consts else node.input[1], node)
        values = [np.asarray(v, dtype=np.float64) for v in (scale, offset)]
        per = []
        for v in values:
            if v.size == 1:
                per.append(float(v.reshape(-1)[0]))
            elif x.image and v.ndim >= 3 and v.shape[-2:] == (1, 1) and v.size == x.shape[1]:  # (1, C, 1, 1)
                per.append(v.reshape(-1).tolist())
            elif (x.nhwc or len(x.shape) == 2) and v.shape[-1] == x.shape[-1] and v.size == x.shape[-1]:
                per.append(v.reshape(-1).tolist())  # (C,): one per channel (or feature), the last axis
            else:
                raise self.fail(node, f"a constant of shape {v.shape}; the engine scales by a number or one per "
                                      "channel (Rescaling)")
        layer = layers.Rescaling(per[0], offset=per[1], name=self.layer_name(node))
        self.put(node, self.apply(layer, x.value, node), chw=x.chw)

    def _arith(self, node, cls, constant):
        known = [name in self.consts for name in node.input]
        if not any(known):
            return self._merge(node, cls)
        if all(known):
            self.consts[node.output[0]] = constant(*(self.consts[n] for n in node.input))
            return None
        c = self.consts[node.input[known.index(True)]]
        first_is_const = known[0]
        return c, first_is_const

    def op_Add(self, node, a):
        from . import layers

        found = self._arith(node, layers.Add, np.add)
        if found:
            self._rescale(node, offset=found[0])

    def op_Sub(self, node, a):
        from . import layers

        found = self._arith(node, layers.Subtract, np.subtract)
        if found:
            c, first = found
            if first:
                self._rescale(node, scale=-1.0, offset=c)
            else:
                self._rescale(node, offset=-c)

    def op_Mul(self, node, a):
        from . import layers

        found = self._arith(node, layers.Multiply, np.multiply)
        if found:
            self._rescale(node, scale=found[0])

    def op_Div(self, node, a):
        known = [name in self.consts for name in node.input]
        if known == [False, True]:
            return self._rescale(node, scale=1.0 / self.consts[node.input[1]])
        if all(known):
            self.consts[node.output[0]] = np.divide(*(self.consts[n] for n in node.input))
            return None
        raise self.fail(node, "a division by a tensor; the engine divides by constants only (Rescaling)")

    def op_Max(self, node, a):
        from . import layers

        self._merge(node, layers.Maximum)

    def op_Min(self, node, a):
        from . import layers

        self._merge(node, layers.Minimum)

    def op_Sum(self, node, a):
        from . import layers

        self._merge(node, layers.Add)

    def op_Mean(self, node, a):
        from . import layers

        self._merge(node, layers.Average)


def load(path):
    """An engine model (a functional ``cnn.Model``, NHWC in and out) from the ONNX file ``path``."""
    proto = read(path)
    try:
        return _Importer(proto, path).model()
    except ModelFileError:
        raise
    except Exception as err:  # untrusted bytes: whatever breaks while building, say so in our own terms
        raise ModelFileError(f"{path}: an ONNX graph the engine cannot build ({type(err).__name__}: {err})") from None

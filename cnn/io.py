"""The engine's own model file: an ``.npz`` with the whole training state.

A saved model is one NumPy ``.npz`` archive (a zip of ``.npy`` arrays):

* ``config``: the architecture, compile settings and training state (epochs
  done, optimizer step count, random generator states) as UTF-8 JSON bytes;
* ``layer_<i>/<param>``: each parameter, float32, e.g. ``layer_0/kernel``;
* ``optimizer/<i>/<param>/<slot>``: the optimizer's state for that parameter.

It is read as data only: the ``.npy`` headers are parsed here and checked
against the architecture and the member's size before any array is made, and
no pickle is ever loaded. Every save goes to a temporary file of its own (a
unique name beside the target), flushed to disk and renamed into place, so a
crash, a kill or a full disk never leaves a half-written model behind, and
two saves to one path at once each end with a whole file (the last rename
wins). See :mod:`cnn.limits` for what a model file may ask for.
"""
import io
import re
import json

import numpy as np

from .errors import InputError, ModelFileError
from .files import atomic_write_bytes
from .functional import Model, graph_from_spec, graph_spec, graph_weight_bytes
from .layers import Input, get_class, layer_spec
from .layers.merging import _Merge
from .limits import MAX_CONFIG_BYTES, MAX_LAYERS, MAX_WEIGHT_BYTES, load_json
from .model import Sequential

FORMAT = "cnn-from-scratch model"
VERSION = 1        # a Sequential: its layers in order
GRAPH_VERSION = 2  # a functional model: its layers in Keras's order and what each reads ("inbound"); still read
NODES_VERSION = 3  # a functional model: its inputs, each layer's calls and its outputs ("graph"), as Keras writes them


def model_config(model):
    """The JSON-able description of a model: architecture, compile settings and
    training state (optimizer step count, random generators, epochs done)."""
    compiled = None
    graph = getattr(model, "_nodes", None) is not None
    if model.loss is not None:
        from .losses import serialize

        several = graph and len(model.outputs) > 1
        compiled = {"loss": [serialize(loss) for loss in model._losses] if several else serialize(model.loss),
                    "optimizer": model.optimizer.get_config(), "metrics": model.metrics}
        if several:
            compiled["loss_weights"] = list(model._loss_weights)
    generators = {"model": model.rng.bit_generator.state}
    for i, layer in enumerate(model.layers):
        if getattr(layer, "rng", None) is not None:
            generators[f"layer_{i}"] = layer.rng.bit_generator.state
    if graph:  # the inputs, each layer's calls and the outputs (cnn.functional.graph_spec)
        shape = {"graph": graph_spec(model)}
    else:
        shape = {"input_shape": list(model.input_shape)}
    return {
        "format": FORMAT,
        "version": NODES_VERSION if graph else VERSION,
        "name": model.name,
        **shape,
        "dtype": str(model.dtype),
        "layers": [layer_spec(layer) for layer in model.layers],
        "compile": compiled,
        "training": {
            "completed_epochs": model.completed_epochs,
            "optimizer_iterations": model.optimizer.iterations if model.optimizer else 0,
            "optimizer_slots": sorted(_optimizer_arrays(model)),
            "generators": generators,
        },
    }


def _optimizer_arrays(model):
    """The optimizer's state arrays, keyed as they are stored in the file."""
    if model.optimizer is None:
        return {}
    return {f"optimizer/{index}/{param}/{slot}": value
            for (index, param), slots in model.optimizer.state.items() for slot, value in slots.items()}


def save_model(model, path):
    """Save ``model`` (built) to ``path`` atomically: weights, architecture,
    compile settings, optimizer state and random generator states, so that
    training resumes exactly where it stopped."""
    if not model.built:
        raise InputError("cannot save a model that is not built: train it or call build() first")
    arrays = {"config": np.frombuffer(json.dumps(model_config(model)).encode("utf-8"), dtype=np.uint8)}
    for i, layer in enumerate(model.layers):
        for name, value in layer.params.items():
            arrays[f"layer_{i}/{name}"] = value
    arrays.update(_optimizer_arrays(model))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


NPY_HEADER_ALLOWANCE = 4096  # an .npy member is its header plus exactly the array's bytes
NPY_DTYPES = {"<f4": np.float32, "<f8": np.float64, "|u1": np.uint8}


# the one header np.save writes for a plain array, e.g.
# {'descr': '<f4', 'fortran_order': False, 'shape': (784, 16), }   (padded with spaces, then a newline)
NPY_HEADER = re.compile(r"\{'descr': '([<>|=]?[a-zA-Z]\d*)', 'fortran_order': (True|False), "
                        r"'shape': \(((?:\d+, )*\d*|\d+,)\), \} *\n?")


def _npy_header(raw, path, member):
    """(descr, fortran_order, shape) from an .npy header, matched against the form
    np.save writes: nothing in it is evaluated."""
    match = NPY_HEADER.fullmatch(raw.decode("latin1"))
    if match is None:
        raise ModelFileError(f"{path}: {member} has a corrupt or unusual .npy header")
    descr, fortran, dims = match.groups()
    return descr, fortran == "True", tuple(int(d) for d in dims.replace(",", " ").split())


def _read_member(archive, info, max_bytes, path, shape=None, where=None, want_dtype=None):
    """One .npy member as an array, read as data only.

    The header is parsed here (no pickle, no object arrays, only the dtypes a
    model file holds) and checked before anything is allocated: the shape
    (``shape`` when the architecture says what it must be), the bytes it
    implies against ``max_bytes`` and against the member's size; then exactly
    those bytes are read.
    """
    if info.file_size > max_bytes:
        if shape is not None:  # the usual reason: an array of another shape
            raise ModelFileError(f"{path}: {where or info.filename} should be {want_dtype} {tuple(shape)} "
                                 f"(float32 or float64), the file's member holds {info.file_size} bytes")
        raise ModelFileError(f"{path}: {info.filename} holds {info.file_size} bytes, at most {max_bytes} expected")
    with archive.open(info) as stream:
        magic = stream.read(8)
        if len(magic) != 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
            raise ModelFileError(f"{path}: {info.filename} is not an .npy array")
        size_bytes = 2 if magic[6] == 1 else 4
        header_length = int.from_bytes(stream.read(size_bytes), "little")
        if header_length > NPY_HEADER_ALLOWANCE:
            raise ModelFileError(f"{path}: {info.filename} has a {header_length}-byte header")
        descr, fortran, declared = _npy_header(stream.read(header_length), path, info.filename)
        if descr not in NPY_DTYPES or fortran is not False:
            raise ModelFileError(f"{path}: {info.filename} holds {descr!r} {declared}; only plain float32, "
                                 "float64 or byte arrays are read")
        dtype = np.dtype(NPY_DTYPES[descr])
        if shape is not None and (declared != tuple(shape) or dtype.kind != "f"):
            raise ModelFileError(f"{path}: {where or info.filename} should be {want_dtype} {tuple(shape)} "
                                 f"(float32 or float64), the file has {dtype} {declared}")
        nbytes = int(np.prod(declared, dtype=object)) * dtype.itemsize
        if nbytes > max_bytes or nbytes > info.file_size:
            raise ModelFileError(f"{path}: {info.filename} declares {declared} ({nbytes} bytes), more than "
                                 f"the {min(max_bytes, info.file_size)} it can hold")
        data = stream.read(nbytes)
        if len(data) != nbytes:
            raise ModelFileError(f"{path}: {info.filename} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(declared).copy()


def _restore_generator(rng, state, path):
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: a random generator state is corrupt ({err})") from None


def _checked_inbound(inbound, count, path):
    """A functional model's "inbound" lists, refused before anything is built
    unless each layer reads earlier layers only (-1: the model's input; so no
    cycle and no layer read before it is made), every layer but the last is
    read by another (no dangling branch), and a layer that is not a merge
    reads exactly one tensor (checked when the graph is made)."""
    if not isinstance(inbound, list) or len(inbound) != count or count == 0:
        raise ModelFileError(f"{path}: the graph's inbound lists do not match its {count} layers")
    read = set()
    for i, sources in enumerate(inbound):
        if not isinstance(sources, list) or not sources or len(sources) > MAX_LAYERS:
            raise ModelFileError(f"{path}: layer {i}'s inbound list is not a non-empty list")
        for j in sources:
            if isinstance(j, bool) or not isinstance(j, int) or not -1 <= j < i:
                raise ModelFileError(f"{path}: layer {i} reads {j!r}: a layer may read the input (-1) or an "
                                     "earlier layer only (a cycle, or a layer read before it is made)")
            read.add(j)
    dangling = sorted(set(range(count - 1)) - read)
    if dangling:
        raise ModelFileError(f"{path}: layers {dangling} are read by no other layer (a dangling branch)")
    return inbound


def _graph_weight_bytes(layers, inbound, input_shape):
    """Bytes of weights the graph needs, from shapes alone (nothing built)."""
    from .backend import float_dtype

    shape = tuple(int(d) for d in input_shape)
    if not shape or min(shape) < 1:
        raise InputError(f"input shape must be positive sizes, got {tuple(input_shape)}")
    shapes, total, itemsize = {-1: shape}, 0, float_dtype().itemsize
    for i, (layer, sources) in enumerate(zip(layers, inbound)):
        given = [shapes[j] for j in sources]
        if isinstance(layer, _Merge):
            shapes[i] = tuple(layer.compute_output_shape(given))
            continue
        if len(given) != 1:
            raise InputError(f"layer {layer.name!r} reads {len(given)} tensors; only merge layers read several")
        total += sum(itemsize * int(np.prod(s, dtype=object)) for s in layer.param_shapes(given[0]).values())
        shapes[i] = tuple(layer.compute_output_shape(given[0]))
    return total


def _graph_model(layers, inbound, input_shape, name):
    """The functional model the lists describe, its layers called as they were."""
    inputs = Input(tuple(int(d) for d in input_shape))
    tensors = {-1: inputs}
    for i, (layer, sources) in enumerate(zip(layers, inbound)):
        given = [tensors[j] for j in sources]
        tensors[i] = layer(given if isinstance(layer, _Merge) else given[0])
    model = Model(inputs, tensors[len(layers) - 1], name=name)
    if [id(l) for l in model.layers] != [id(l) for l in layers]:
        raise InputError("the graph's layers are not in the order it was saved in")
    return model


def load_npz_archive(archive, path, custom_objects, compile):
    members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    if "config" not in members:
        raise ModelFileError(f"{path}: no model configuration inside")
    raw = _read_member(archive, members.pop("config"), MAX_CONFIG_BYTES, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: the model configuration is not text")
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelFileError(f"{path}: the model configuration is corrupt ({err})") from None
    config = load_json(text, ModelFileError, f"{path}: the model configuration")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a {FORMAT} file")
    if config.get("version") not in (VERSION, GRAPH_VERSION, NODES_VERSION):
        raise ModelFileError(f"{path}: format version {config.get('version')!r}, this engine reads "
                             f"{VERSION}, {GRAPH_VERSION} and {NODES_VERSION}")

    model = Sequential(name=str(config.get("name", "sequential")))
    try:
        if not isinstance(config["layers"], list) or len(config["layers"]) > MAX_LAYERS:
            raise ModelFileError(f"{path}: the layer list is not a list of at most {MAX_LAYERS} layers")
        layers = []
        for spec in config["layers"]:
            if not isinstance(spec, dict):
                raise ModelFileError(f"{path}: a layer entry is not a dict")
            cls = get_class(spec["class_name"], custom_objects)
            if cls is None:
                raise ModelFileError(f"{path}: unknown layer type {spec['class_name']!r}; for a layer of your "
                                     "own pass custom_objects={'Name': TheClass} or decorate it with @cnn.layers.register")
            if not isinstance(spec["config"], dict):
                raise ModelFileError(f"{path}: layer {spec['class_name']!r} has no valid config")
            layers.append(cls.from_config(dict(spec["config"])))
        if config["version"] == NODES_VERSION:
            needed = graph_weight_bytes(layers, config.get("graph"))
        elif config["version"] == GRAPH_VERSION:
            inbound = _checked_inbound(config.get("inbound"), len(layers), path)
            needed = _graph_weight_bytes(layers, inbound, config["input_shape"])
        else:
            for layer in layers:
                model.add(layer)
            needed = model.weight_bytes(config["input_shape"])
        # refuse an architecture bigger than the file's weights before allocating it
        held = sum(info.file_size for info in members.values())  # each already bounded by the bytes present
        if needed > held or needed > MAX_WEIGHT_BYTES:
            raise ModelFileError(f"{path}: the architecture needs {needed} bytes of weights, the file holds at most "
                                 f"{held}" + (f" (and {MAX_WEIGHT_BYTES} is the limit)" if needed > MAX_WEIGHT_BYTES else ""))
        if config["version"] == NODES_VERSION:
            model = graph_from_spec(layers, config["graph"], str(config.get("name", "functional")))
        elif config["version"] == GRAPH_VERSION:
            model = _graph_model(layers, inbound, config["input_shape"], str(config.get("name", "functional")))
        else:
            model.build(config["input_shape"])
        if config.get("compile") and compile:
            compiled = dict(config["compile"])
            # one loss saved with its arguments ({'class_name', 'config'}): a loss object, which a graph's
            # compile would otherwise read as a dict of losses by output name
            if isinstance(compiled.get("loss"), dict) and "class_name" in compiled["loss"]:
                from .losses import get as get_loss

                compiled["loss"] = get_loss(compiled["loss"])
            model.compile(**compiled)
        training = config.get("training") or {}
        slots = training.get("optimizer_slots", [])
    except ModelFileError:
        raise
    except InputError as err:
        raise ModelFileError(f"{path}: the architecture is invalid ({err})") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as err:
        raise ModelFileError(f"{path}: the architecture is invalid ({type(err).__name__}: {err})") from None

    expected = {f"layer_{i}/{name}": layer.params[name] for i, layer in enumerate(model.layers) for name in layer.params}
    owners = {f"layer_{i}/{name}": (layer, name) for i, layer in enumerate(model.layers) for name in layer.params}
    if not isinstance(slots, list) or len(slots) > 8 * len(expected):
        raise ModelFileError(f"{path}: the optimizer state list is corrupt")
    for key in slots:  # optimizer/<layer>/<param>/<slot> has its parameter's shape
        parts = str(key).split("/")
        if len(parts) != 4 or f"layer_{parts[1]}/{parts[2]}" not in expected or model.optimizer is None \
                or parts[2] not in model.layers[int(parts[1])].trainable_names:  # layer_<digits> is in expected
            raise ModelFileError(f"{path}: optimizer state {key!r} belongs to no parameter")
        expected[key] = expected[f"layer_{parts[1]}/{parts[2]}"]
    missing = sorted(set(expected) - set(members))
    extra = sorted(set(members) - set(expected))
    if missing or extra:
        raise ModelFileError(f"{path}: weights do not match the architecture (missing {missing}, unexpected {extra})")
    values = {}
    for key, like in expected.items():
        where = f"layer {owners[key][0].name!r} {owners[key][1]}" if key in owners else key
        # at most float64's bytes: a float64 file may fill a float32 model and back
        value = _read_member(archive, members[key], 8 * like.size + NPY_HEADER_ALLOWANCE, path, like.shape, where,
                             like.dtype)
        if not np.isfinite(value).all():
            raise ModelFileError(f"{path}: {key} contains NaN or Inf")
        values[key] = value.astype(like.dtype, copy=False)  # the dtype the model was built in (floatx)
    for key, (layer, name) in owners.items():
        layer.params[name] = values[key]
    for key in slots:
        _, index, param, slot = key.split("/")
        model.optimizer.state.setdefault((int(index), param), {})[slot] = values[key]

    try:
        model.completed_epochs = int(training.get("completed_epochs", 0))
        if model.optimizer is not None:
            model.optimizer.iterations = int(training.get("optimizer_iterations", 0))
        generators = training.get("generators", {})
    except (TypeError, ValueError, AttributeError) as err:
        raise ModelFileError(f"{path}: the training state is corrupt ({err})") from None
    if "model" in generators:
        _restore_generator(model.rng, generators["model"], path)
    for i, layer in enumerate(model.layers):
        if f"layer_{i}" in generators and getattr(layer, "rng", None) is not None:
            _restore_generator(layer.rng, generators[f"layer_{i}"], path)
    return model

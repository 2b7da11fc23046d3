"""Moving models between this engine and Keras 3, with no TensorFlow needed.

Keras 3 keeps weights in HDF5: a ``.weights.h5`` file, or the
``model.weights.h5`` member of a ``.keras`` zip (beside ``config.json``). Each
layer's arrays sit at ``layers/<name>/vars/0, 1, ...``, where ``<name>`` is the
layer's class in snake case with a counter (``conv2d``, ``conv2d_1``,
``max_pooling2d``...), in the order the model holds the layers; arrays come in
the layer's own order (kernel, then bias). The engine's layouts are Keras's
((kh, kw, cin, cout) and (in, out) kernels), so the arrays move unchanged.

Reading HDF5 needs ``h5py`` (``pip install h5py``); nothing else here does.

A weights file is read from its own bytes only: HDF5 can point elsewhere
(external storage in another file, external links, soft links, virtual
datasets), and every such reference is refused; a dataset's type and shape
are compared with the layer's from its header, before its data is read.
"""
import contextlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError, ModelFileError
from .files import atomic_write_bytes, open_archive
from .functional import graph_from_spec, graph_spec, graph_weight_bytes
from .layers import get_class
from .layers.merging import _Merge
from .limits import MAX_CONFIG_BYTES, MAX_LAYERS, MAX_WEIGHT_BYTES, load_json, open_regular, read_regular
from .model import Sequential, _snake

KERAS_WEIGHTS_MEMBER = "model.weights.h5"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise InputError("reading or writing Keras files needs h5py: pip install h5py") from None
    return h5py


def keras_layer_paths(model):
    """The HDF5 group Keras uses for each layer of ``model``, in order."""
    counts, paths = {}, []
    for layer in model.layers:
        base = _snake(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        paths.append(f"layers/{base}" if n == 0 else f"layers/{base}_{n}")
    return paths


def _read_member(archive, member, path, max_bytes):
    """One member of an open, checked archive (:func:`cnn.files.open_archive`), at most ``max_bytes``."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ModelFileError(f"{path}: no {member} inside; is this a Keras 3 .keras file?") from None
    if info.file_size > max_bytes:
        raise ModelFileError(f"{path}: {member} claims {info.file_size} bytes, more than the {max_bytes} accepted")
    try:
        with archive.open(info) as stream:
            data = stream.read(info.file_size + 1)  # bounded by the checked entry, not by the limit
    except Exception as err:  # corrupt compressed stream
        raise ModelFileError(f"{path}: not a readable .keras archive ({type(err).__name__}: {err})") from None
    if len(data) != info.file_size:
        raise ModelFileError(f"{path}: {member} is truncated or larger than its entry says")
    return data


def _weights_bytes(path, archive=None):
    """The HDF5 bytes of a .weights.h5 file, or of the weights inside a .keras archive."""
    if archive is not None:
        return _read_member(archive, KERAS_WEIGHTS_MEMBER, path, MAX_WEIGHT_BYTES)
    with open_regular(path, ModelFileError) as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        with open_regular(path, ModelFileError) as f, open_archive(f, path) as zipped:
            return _read_member(zipped, KERAS_WEIGHTS_MEMBER, path, MAX_WEIGHT_BYTES)
    return read_regular(path, ModelFileError, MAX_WEIGHT_BYTES)


def _open_weights(path, archive=None):
    """An open h5py File over the weights' bytes (in memory: nothing else is read)."""
    h5py = _h5py()
    data = _weights_bytes(Path(path), archive)
    try:
        return h5py.File(io.BytesIO(data), "r")
    except Exception as err:
        raise ModelFileError(f"{path}: not a readable Keras weights file ({err})") from None


def _local_child(h5py, group, name, path, where):
    """``group[name]`` if it is a hard link inside this file; None if absent.
    An external or soft link (data from elsewhere, or a path the file chooses)
    is refused."""
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(f"{path}: {where} is a {type(link).__name__}; a weights file is read from its own "
                             "bytes only (no external or soft links)")
    return group[name]


def _local_dataset(h5py, dataset, path, where):
    """Refuse a dataset whose data would come from outside the file."""
    if not isinstance(dataset, h5py.Dataset):
        raise ModelFileError(f"{path}: {where} is not a dataset")
    if dataset.is_virtual:
        raise ModelFileError(f"{path}: {where} is a virtual dataset (data from other files); refused")
    if dataset.id.get_create_plist().get_external_count() > 0:
        raise ModelFileError(f"{path}: {where} keeps its data in an external file; refused")
    return dataset


def load_keras_weights(model, path, archive=None):
    """Copy the weights of a Keras 3 model file into the matching built ``model``.

    Parameters
    ----------
    model : Sequential, built, with the same layers as the Keras model
    path : a ``.keras`` file or a ``.weights.h5`` file

    Raises
    ------
    ModelFileError
        Naming the layer and the shapes when the architectures differ, or when
        the file is corrupt.
    """
    if not model.built:
        raise InputError("build the model first (give the first layer an input_shape)")
    new_params = []
    h5py = _h5py()
    with _open_weights(path, archive) as f:
        try:
            expected = set()
            layers_group = _local_child(h5py, f, "layers", path, "layers")
            for layer, group_path in zip(model.layers, keras_layer_paths(model)):
                expected.add(group_path)
                names = list(layer.params)  # every declared weight, in Keras's order
                key = group_path.split("/", 1)[1]
                layer_group = None if layers_group is None else _local_child(h5py, layers_group, key, path, group_path)
                group = None if layer_group is None else _local_child(h5py, layer_group, "vars", path, f"{group_path}/vars")
                stored = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1) if group is not None else []
                if len(stored) != len(names) or any(not k.isdigit() for k in stored):
                    raise ModelFileError(
                        f"{path}: layer {layer.name!r} ({type(layer).__name__}) has {len(names)} weight arrays "
                        f"{[layer.params[n].shape for n in names]}, the file has {len(stored)} at {group_path}"
                    )
                for name, index in zip(names, stored):
                    where = f"{group_path}/vars/{index}"
                    dataset = _local_dataset(h5py, _local_child(h5py, group, index, path, where), path, where)
                    want = layer.params[name].shape
                    # shape and type from the header: nothing is read before they match
                    if dataset.shape != want or dataset.dtype.kind != "f" or dataset.dtype.itemsize not in (4, 8):
                        raise ModelFileError(
                            f"{path}: layer {layer.name!r} {name} should be {want}, "
                            f"the file has {dataset.dtype} {dataset.shape} at {where}"
                        )
                    value = np.asarray(dataset[()])
                    if not np.isfinite(value).all():
                        raise ModelFileError(f"{path}: layer {layer.name!r} {name} contains NaN or Inf")
                    new_params.append((layer, name, value.astype(layer.params[name].dtype)))
            extra = []
            if layers_group is not None:
                for key in layers_group:
                    child = _local_child(h5py, layers_group, key, path, f"layers/{key}")
                    vars_group = _local_child(h5py, child, "vars", path, f"layers/{key}/vars") \
                        if isinstance(child, h5py.Group) else None
                    if f"layers/{key}" not in expected and vars_group is not None and len(vars_group):
                        extra.append(key)
            if extra:
                raise ModelFileError(f"{path}: the file has weights for layers the model lacks: {sorted(extra)}")
        except ModelFileError:
            raise
        except Exception as err:  # untrusted bytes: whatever h5py trips on, say so in our terms
            raise ModelFileError(f"{path}: corrupt Keras weights file ({type(err).__name__}: {err})") from None
    for layer, name, value in new_params:  # all checked: now change the model
        layer.params[name] = value
    return model


def _weights_h5_bytes(model):
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for layer, group_path in zip(model.layers, keras_layer_paths(model)):
            group = f.create_group(f"{group_path}/vars")
            group.attrs["name"] = layer.name
            for i, value in enumerate(layer.params.values()):
                group.create_dataset(str(i), data=value)
    return buffer.getvalue()


def _takes_data_format(cls):
    """Whether the layer's constructor takes ``data_format`` (its Keras config
    then says 'channels_last': without it a Keras whose keras.json sets
    channels_first would read the layer as NCHW)."""
    import inspect

    return "data_format" in inspect.signature(cls.__init__).parameters


def _keras_object(module, value):
    """An initializer or regularizer as Keras 3 serializes it."""
    from . import initializers

    if value is None:
        return None
    if isinstance(value, str):  # a built-in name: its class, with default arguments
        value = initializers.get(value)
        config = value.get_config()
    elif isinstance(value, dict):
        value, config = value, value.get("config", {})
        return {"module": module, "class_name": value["class_name"], "config": config, "registered_name": None}
    else:
        config = value.get_config()
    return {"module": module, "class_name": type(value).__name__, "config": config, "registered_name": None}


def _keras_layer_config(layer):
    config = dict(layer.get_config())
    name = type(layer).__name__
    for key, value in list(config.items()):
        if key.endswith("_initializer"):
            config[key] = _keras_object("keras.initializers", value)
        elif key.endswith("_regularizer"):
            config[key] = None if value is None else {"module": "keras.regularizers", **value, "registered_name": None}
    for key in getattr(type(layer), "keras_omits", ()):  # arguments the Keras class does not take
        config.pop(key, None)
    if _takes_data_format(type(layer)):
        config["data_format"] = "channels_last"
    return {"module": "keras.layers", "class_name": name, "config": config, "registered_name": None}


def keras_compile_config(model):
    """The ``compile_config`` Keras 3 writes for a compiled model: optimizer,
    loss and metrics (the optimizer's state is not carried: use the engine's
    ``.npz`` format to resume training exactly)."""
    from .losses import serialize

    if model.loss is None:
        return None
    optimizer = model.optimizer.get_config()
    class_name = optimizer.pop("name")
    if isinstance(optimizer.get("learning_rate"), dict):
        optimizer["learning_rate"] = {"module": "keras.optimizers.schedules", **optimizer["learning_rate"],
                                      "registered_name": None}
    optimizer["name"] = class_name.lower()
    def keras_loss(loss):
        loss = serialize(loss)
        return {"module": "keras.losses", **loss, "registered_name": None} if isinstance(loss, dict) else loss

    several = getattr(model, "_nodes", None) is not None and len(model.outputs) > 1
    loss = [keras_loss(one) for one in model._losses] if several else keras_loss(model.loss)
    weights = list(model._loss_weights) if several and any(w != 1.0 for w in model._loss_weights) else None
    metrics = model.metrics if isinstance(model.metrics, dict) else (list(model.metrics) or None)
    return {"optimizer": {"module": "keras.optimizers", "class_name": class_name, "config": optimizer,
                          "registered_name": None},
            "loss": loss, "metrics": metrics, "loss_weights": weights, "weighted_metrics": None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _keras_tensor(shape, dtype, ref):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *shape], "dtype": dtype, "keras_history": list(ref)}}


def keras_functional_config(model):
    """The ``config.json`` of a Keras 3 functional model equal to the graph ``model``:
    an InputLayer per input, each layer with its ``inbound_nodes`` (the tensors
    each call read), the ``input_layers`` and ``output_layers``."""
    spec, dtype = graph_spec(model), str(model.dtype)
    shapes = {t.name: t.sample_shape for t in model.inputs}
    for layer in model.layers:
        for k, node in enumerate(n for n in sorted(model._nodes, key=lambda n: n.index) if n.layer is layer):
            shapes[(layer.name, k)] = node.output.sample_shape

    def tensor(ref):
        name, index, _ = ref
        return _keras_tensor(shapes[name] if name in shapes else shapes[(name, index)], dtype, ref)

    layers = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None, "name": item["name"],
               "config": {"batch_shape": [None, *item["shape"]], "dtype": dtype, "sparse": False,
                          "name": item["name"]},
               "inbound_nodes": []} for item in spec["inputs"]]
    for layer, calls in zip(model.layers, spec["calls"]):
        entry = _keras_layer_config(layer)
        shape = [[None, *s] for s in layer.input_shape] if isinstance(layer, _Merge) else [None, *layer.input_shape]
        entry.update(name=layer.name, build_config={"input_shape": shape},
                     inbound_nodes=[{"args": [[tensor(r) for r in refs]] if isinstance(layer, _Merge)
                                     else [tensor(refs[0])], "kwargs": {}} for refs in calls])
        layers.append(entry)
    one = lambda refs: refs[0] if len(refs) == 1 else refs  # noqa: E731 - Keras writes one tensor unlisted
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "config": {"name": model.name, "trainable": True, "layers": layers,
                       "input_layers": one([[item["name"], 0, 0] for item in spec["inputs"]]),
                       "output_layers": one(spec["outputs"])},
            "build_config": {"input_shape": None}, "compile_config": keras_compile_config(model)}


def keras_model_config(model):
    """The ``config.json`` of a Keras 3 model equal to ``model`` (a Sequential, or a graph)."""
    if getattr(model, "_nodes", None) is not None:
        return keras_functional_config(model)
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, *model.input_shape], "dtype": str(model.dtype), "name": "input_layer"},
               "registered_name": None}]
    layers += [_keras_layer_config(layer) for layer in model.layers]
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": model.name, "trainable": True, "layers": layers},
            "registered_name": None, "build_config": {"input_shape": [None, *model.input_shape]},
            "compile_config": keras_compile_config(model)}


def save_keras(model, path):
    """Export ``model`` for Keras 3, atomically.

    ``path`` ending in ``.weights.h5`` gives the weights only (for
    ``keras_model.load_weights(path)`` on the same architecture); ending in
    ``.keras`` gives a whole model for ``keras.models.load_model(path)``.
    """
    if not model.built:
        raise InputError("cannot export a model that is not built")
    path = Path(path)
    weights = _weights_h5_bytes(model)
    if path.name.endswith(".weights.h5"):
        atomic_write_bytes(path, weights)
    elif path.suffix == ".keras":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("metadata.json", json.dumps({"keras_version": "3", "engine": "cnn-from-scratch"}))
            archive.writestr("config.json", json.dumps(keras_model_config(model)))
            archive.writestr(KERAS_WEIGHTS_MEMBER, weights)
        atomic_write_bytes(path, buffer.getvalue())
    else:
        raise InputError(f"{path}: a Keras file name ends in .keras or .weights.h5")


# keys of a Keras layer config that say nothing the engine needs
_IGNORED_KEYS = ("dtype", "batch_input_shape", "input_shape", "batch_shape")


def _engine_layer(spec, path, custom_objects):
    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ModelFileError(f"{path}: a layer entry of config.json is not a dict")
    class_name, config = spec.get("class_name"), dict(spec.get("config") or {})
    cls = get_class(class_name, custom_objects)
    if cls is None:
        raise ModelFileError(f"{path}: Keras layer {class_name!r} has no equivalent in this engine")
    config = {k: v for k, v in config.items() if k not in _IGNORED_KEYS}
    try:
        return cls.from_config(config)
    except InputError as err:
        raise ModelFileError(f"{path}: layer {config.get('name')!r} cannot be built here: {err}") from None
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: layer {config.get('name')!r} cannot be built here ({err})") from None


def _compile_from_keras(model, compile_config, path):
    """Compile ``model`` from a .keras file's compile_config (optimizer, loss, metrics)."""
    from .optimizers import OPTIMIZERS

    try:
        optimizer = compile_config.get("optimizer")
        if isinstance(optimizer, dict):
            cls = OPTIMIZERS.get(optimizer.get("class_name"))
            if cls is None:
                raise InputError(f"optimizer {optimizer.get('class_name')!r} is not in this engine")
            options = {k: v for k, v in (optimizer.get("config") or {}).items() if k != "name"}
            optimizer = cls(**options)
        loss = compile_config.get("loss")
        if loss is None:
            return  # saved uncompiled
        if isinstance(loss, dict) and "class_name" in loss:  # one loss object, not a dict of losses by output
            from .losses import get as get_loss

            loss = get_loss(loss)

        def metric_names(value):  # a metric, or Keras's nesting of them per output (lists, dicts)
            if isinstance(value, dict) and "class_name" not in value:
                return {key: metric_names(v) for key, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [metric_names(v) for v in value]
            return value if value is None or isinstance(value, str) else (value.get("config") or {}).get("name")

        model.compile(optimizer=optimizer, loss=loss, metrics=metric_names(compile_config.get("metrics") or []),
                      loss_weights=compile_config.get("loss_weights"))
    except (InputError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{path}: the compile settings cannot be used here ({err}); "
                             "load with compile=False and compile the model yourself") from None


def _keras_refs(value, where, path):
    """A Keras config's tensor references ([layer, call, tensor]), one or listed."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, list) for v in value):
        return [ref for v in value for ref in _keras_refs(v, where, path)] if all(
            len(v) == 3 and isinstance(v[0], str) for v in value) else _bad(path, where)
    return _bad(path, where)


def _bad(path, where):
    raise ModelFileError(f"{path}: {where} is not a tensor reference or a list of them")


def _keras_call(node, layer, path):
    """One entry of a layer's ``inbound_nodes``: the references of the tensors it read."""
    where = f"an inbound node of layer {layer.name!r}"
    if not isinstance(node, dict) or not isinstance(node.get("args"), list) or len(node["args"]) != 1:
        raise ModelFileError(f"{path}: {where} is not one call on one argument")
    kwargs = node.get("kwargs") or {}
    given = sorted(k for k, v in kwargs.items() if v is not None) if isinstance(kwargs, dict) else ["?"]
    if given:  # Keras writes mask=None for some layers: nothing given
        raise ModelFileError(f"{path}: {where} passes keyword arguments {given}, which this engine does not take")
    arg = node["args"][0]
    tensors = arg if isinstance(arg, list) else [arg]
    refs = []
    for tensor in tensors:
        history = tensor.get("config", {}).get("keras_history") if isinstance(tensor, dict) and \
            tensor.get("class_name") == "__keras_tensor__" and isinstance(tensor.get("config"), dict) else None
        if not isinstance(history, list):
            raise ModelFileError(f"{path}: {where} reads something that is not a Keras tensor")
        refs.append(history)
    return refs


def _functional_from_keras(config, path, custom_objects, archive):
    """The engine's graph from a Keras 3 functional model's config, checked and
    sized from the description before anything is built."""
    specs = config.get("layers")
    if not isinstance(specs, list) or not specs or len(specs) > MAX_LAYERS:
        raise ModelFileError(f"{path}: config.json lists no layers, or more than {MAX_LAYERS}")
    inputs, layers, calls = {}, [], []
    with _config_errors(path):
        for spec in specs:
            if isinstance(spec, dict) and spec.get("class_name") == "InputLayer":
                layer_config = spec.get("config") or {}
                shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
                if not isinstance(shape, list) or len(shape) < 2:
                    raise ModelFileError(f"{path}: an InputLayer has no batch_shape")
                inputs[str(spec.get("name", layer_config.get("name")))] = list(shape[1:])
                continue
            layer = _engine_layer(spec, path, custom_objects)
            nodes = spec.get("inbound_nodes")
            if not isinstance(nodes, list):
                raise ModelFileError(f"{path}: layer {layer.name!r} has no inbound_nodes list")
            layers.append(layer)
            calls.append([_keras_call(node, layer, path) for node in nodes])
        input_refs = _keras_refs(config.get("input_layers"), "input_layers", path)
        unknown = [ref[0] for ref in input_refs if ref[0] not in inputs]
        if unknown or len(input_refs) != len(inputs):
            raise ModelFileError(f"{path}: input_layers {[ref[0] for ref in input_refs]} do not name the file's "
                                 f"InputLayers {sorted(inputs)}")
        spec = {"inputs": [{"name": ref[0], "shape": inputs[ref[0]]} for ref in input_refs], "calls": calls,
                "outputs": _keras_refs(config.get("output_layers"), "output_layers", path)}
        _check_weights_fit(graph_weight_bytes(layers, spec), archive, path)
        return graph_from_spec(layers, spec, str(config.get("name", "functional")))


@contextlib.contextmanager
def _config_errors(path):
    """Reading a config.json: the engine's refusals and what a config of the wrong shapes
    makes the readers raise, said as the file's ModelFileError."""
    try:
        yield
    except ModelFileError:
        raise
    except InputError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except (TypeError, IndexError, AttributeError, KeyError, ValueError, OverflowError) as err:
        raise ModelFileError(f"{path}: config.json is malformed ({type(err).__name__}: {err})") from None


def _check_weights_fit(needed, archive, path):
    """Refuse an architecture whose weights the file cannot hold, before any is allocated
    (a float32 file may fill a float64 model: half the bytes)."""
    held = archive.getinfo(KERAS_WEIGHTS_MEMBER).file_size if KERAS_WEIGHTS_MEMBER in archive.namelist() else 0
    if needed > 2 * held or needed > MAX_WEIGHT_BYTES:
        raise ModelFileError(f"{path}: the architecture needs {needed} bytes of weights, the file holds {held}")


def load_keras_model(path, custom_objects=None, compile=True, _archive=None):
    """Build the engine's model from a Keras 3 ``.keras`` file, weights included.

    Supports Sequential and functional models of the engine's layers (:data:`cnn.layers.LAYERS`
    and registered ones); anything else is refused by name. With ``compile``
    the file's optimizer, loss and metrics are used when it has them.
    """
    path = Path(path)
    if _archive is None:
        with open_regular(path, ModelFileError) as f, open_archive(f, path) as archive:
            return load_keras_model(path, custom_objects, compile, _archive=archive)
    archive = _archive
    try:
        text = _read_member(archive, "config.json", path, MAX_CONFIG_BYTES).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ModelFileError(f"{path}: config.json is corrupt ({err})") from None
    config = load_json(text, ModelFileError, f"{path}: config.json")
    kind = config.get("class_name") if isinstance(config, dict) else None
    if kind not in ("Sequential", "Functional") or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{path}: only Keras Sequential and functional models can be loaded, got "
                             f"{kind if kind is not None else type(config).__name__!r}")
    if kind == "Functional":
        model = _functional_from_keras(config["config"], path, custom_objects or {}, archive)
        load_keras_weights(model, path, archive)
        if compile and isinstance(config.get("compile_config"), dict):
            _compile_from_keras(model, config["compile_config"], path)
        return model
    specs = config["config"].get("layers", [])
    if not isinstance(specs, list) or len(specs) > MAX_LAYERS:
        raise ModelFileError(f"{path}: config.json lists no layers, or more than {MAX_LAYERS}")
    input_shape = None
    model = Sequential(name=str(config["config"].get("name", "sequential")))
    with _config_errors(path):
        for spec in specs:
            if isinstance(spec, dict) and spec.get("class_name") == "InputLayer":
                layer_config = spec.get("config") or {}
                shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
                input_shape = tuple(shape[1:])
                continue
            model.add(_engine_layer(spec, path, custom_objects or {}))
        if input_shape is None:
            build = (config.get("build_config") or {}).get("input_shape")
            if not build:
                raise ModelFileError(f"{path}: the model's input shape is not recorded")
            input_shape = tuple(build[1:])
        needed = model.weight_bytes(input_shape)
    _check_weights_fit(needed, archive, path)
    try:
        model.build(input_shape)
    except InputError as err:
        raise ModelFileError(f"{path}: {err}") from None
    load_keras_weights(model, path, archive)
    if compile and isinstance(config.get("compile_config"), dict):
        _compile_from_keras(model, config["compile_config"], path)
    return model

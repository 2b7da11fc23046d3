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
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError, ModelFileError
from .io import atomic_write_bytes, open_archive
from .limits import MAX_CONFIG_BYTES, MAX_LAYERS, MAX_WEIGHT_BYTES, load_json, open_regular, read_regular

KERAS_WEIGHTS_MEMBER = "model.weights.h5"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise InputError("reading or writing Keras files needs h5py: pip install h5py") from None
    return h5py


def keras_layer_paths(model):
    """The HDF5 group Keras uses for each layer of ``model``, in order."""
    from .model import _snake

    counts, paths = {}, []
    for layer in model.layers:
        base = _snake(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        paths.append(f"layers/{base}" if n == 0 else f"layers/{base}_{n}")
    return paths


def _read_member(archive, member, path, max_bytes):
    """One member of an open, checked archive (:func:`cnn.io.open_archive`), at most ``max_bytes``."""
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


# layers whose Keras config carries data_format
_DATA_FORMAT = {"Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                "Flatten", "ZeroPadding2D"}


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
    if name in _DATA_FORMAT:
        config["data_format"] = "channels_last"
    if name == "Conv2D":
        config["groups"] = 1
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
    loss = serialize(model.loss)
    if isinstance(loss, dict):
        loss = {"module": "keras.losses", **loss, "registered_name": None}
    return {"optimizer": {"module": "keras.optimizers", "class_name": class_name, "config": optimizer,
                          "registered_name": None},
            "loss": loss, "metrics": list(model.metrics) or None, "loss_weights": None, "weighted_metrics": None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def keras_model_config(model):
    """The ``config.json`` of a Keras 3 Sequential equal to ``model``."""
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
    if getattr(model, "_nodes", None) is not None and path.suffix == ".keras":
        from .errors import NotInEngineError

        raise NotInEngineError(f"{path}: a functional model is not written as a .keras file yet (its config "
                               "would need Keras's inbound nodes); save it as .npz, or its weights as .weights.h5")
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
    from .layers import get_class

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
        if isinstance(loss, dict) and "class_name" not in loss:
            raise InputError("only a single loss is supported")
        metrics = compile_config.get("metrics") or []
        metrics = [m if isinstance(m, str) else (m.get("config") or {}).get("name") for m in metrics]
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    except (InputError, TypeError, AttributeError) as err:
        raise ModelFileError(f"{path}: the compile settings cannot be used here ({err}); "
                             "load with compile=False and compile the model yourself") from None


def load_keras_model(path, custom_objects=None, compile=True, _archive=None):
    """Build the engine's Sequential from a Keras 3 ``.keras`` file, weights included.

    Supports Sequential models of the engine's layers (:data:`cnn.layers.LAYERS`
    and registered ones); anything else is refused by name. With ``compile``
    the file's optimizer, loss and metrics are used when it has them.
    """
    from .model import Sequential

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
    if not isinstance(config, dict) or config.get("class_name") != "Sequential" or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{path}: only Keras Sequential models can be loaded, got {config.get('class_name') if isinstance(config, dict) else type(config).__name__!r}")
    specs = config["config"].get("layers", [])
    if not isinstance(specs, list) or len(specs) > MAX_LAYERS:
        raise ModelFileError(f"{path}: config.json lists no layers, or more than {MAX_LAYERS}")
    input_shape = None
    model = Sequential(name=str(config["config"].get("name", "sequential")))
    try:
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
    except ModelFileError:
        raise
    except InputError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except (TypeError, IndexError, AttributeError, KeyError, ValueError, OverflowError) as err:
        raise ModelFileError(f"{path}: config.json is malformed ({type(err).__name__}: {err})") from None
    weights_size = archive.getinfo(KERAS_WEIGHTS_MEMBER).file_size if KERAS_WEIGHTS_MEMBER in archive.namelist() else 0
    # checked before any weight is allocated (a float32 file may fill a float64 model: half the bytes)
    if needed > 2 * weights_size or needed > MAX_WEIGHT_BYTES:
        raise ModelFileError(f"{path}: the architecture needs {needed} bytes of weights, the file holds {weights_size}")
    try:
        model.build(input_shape)
    except InputError as err:
        raise ModelFileError(f"{path}: {err}") from None
    load_keras_weights(model, path, archive)
    if compile and isinstance(config.get("compile_config"), dict):
        _compile_from_keras(model, config["compile_config"], path)
    return model

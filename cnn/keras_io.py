"""Moving models between this engine and Keras 3, with no TensorFlow needed.

Keras 3 keeps weights in HDF5: a ``.weights.h5`` file, or the
``model.weights.h5`` member of a ``.keras`` zip (beside ``config.json``). Each
layer's arrays sit at ``layers/<name>/vars/0, 1, ...``, where ``<name>`` is the
layer's class in snake case with a counter (``conv2d``, ``conv2d_1``,
``max_pooling2d``...), in the order the model holds the layers; arrays come in
the layer's own order (kernel, then bias). The engine's layouts are Keras's
((kh, kw, cin, cout) and (in, out) kernels), so the arrays move unchanged.

Reading HDF5 needs ``h5py`` (``pip install h5py``); nothing else here does.
"""
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError, ModelFileError
from .io import MAX_DEFLATE_RATIO, atomic_write_bytes

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


def _read_member(path, member):
    """One member of a zip archive, refusing a member larger than the zip can hold."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
            if info.file_size > MAX_DEFLATE_RATIO * max(info.compress_size, 1) + (1 << 20):
                raise ModelFileError(f"{path}: {member} claims {info.file_size} bytes, more than the archive can hold")
            return archive.read(member)
    except KeyError:
        raise ModelFileError(f"{path}: no {member} inside; is this a Keras 3 .keras file?") from None
    except ModelFileError:
        raise
    except Exception as err:  # corrupt zip structure or compressed stream
        raise ModelFileError(f"{path}: not a readable .keras archive ({type(err).__name__}: {err})") from None


def _open_weights(path):
    """An open h5py File of the weights in a .keras or .weights.h5 file."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    source = io.BytesIO(_read_member(path, KERAS_WEIGHTS_MEMBER)) if zipfile.is_zipfile(path) else path
    try:
        return h5py.File(source, "r")
    except Exception as err:
        raise ModelFileError(f"{path}: not a readable Keras weights file ({err})") from None


def load_keras_weights(model, path):
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
    with _open_weights(path) as f:
        try:
            expected = set()
            for layer, group_path in zip(model.layers, keras_layer_paths(model)):
                expected.add(group_path)
                names = list(layer.params)  # every declared weight, in Keras's order
                group = f.get(f"{group_path}/vars")
                stored = sorted(group.keys(), key=int) if group is not None else []
                if len(stored) != len(names):
                    raise ModelFileError(
                        f"{path}: layer {layer.name!r} ({type(layer).__name__}) has {len(names)} weight arrays "
                        f"{[layer.params[n].shape for n in names]}, the file has {len(stored)} at {group_path}"
                    )
                for name, key in zip(names, stored):
                    dataset = group[key]
                    want = layer.params[name].shape
                    # shape and type from the header: nothing is read before they match
                    if dataset.shape != want or not np.issubdtype(dataset.dtype, np.floating):
                        raise ModelFileError(
                            f"{path}: layer {layer.name!r} {name} should be {want}, "
                            f"the file has {dataset.dtype} {dataset.shape} at {group_path}/vars/{key}"
                        )
                    value = np.asarray(dataset[()])
                    if not np.isfinite(value).all():
                        raise ModelFileError(f"{path}: layer {layer.name!r} {name} contains NaN or Inf")
                    new_params.append((layer, name, value.astype(layer.params[name].dtype)))
            layers_group = f.get("layers")
            extra = []
            if layers_group is not None:
                for key in layers_group:
                    vars_group = layers_group[key].get("vars")
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


def load_keras_model(path, custom_objects=None, compile=True):
    """Build the engine's Sequential from a Keras 3 ``.keras`` file, weights included.

    Supports Sequential models of the engine's layers (:data:`cnn.layers.LAYERS`
    and registered ones); anything else is refused by name. With ``compile``
    the file's optimizer, loss and metrics are used when it has them.
    """
    from .model import Sequential

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        config = json.loads(_read_member(path, "config.json").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path}: config.json is corrupt ({type(err).__name__})") from None
    if not isinstance(config, dict) or config.get("class_name") != "Sequential" or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{path}: only Keras Sequential models can be loaded, got {config.get('class_name') if isinstance(config, dict) else config!r}")
    specs = config["config"].get("layers", [])
    if not isinstance(specs, list):
        raise ModelFileError(f"{path}: config.json lists no layers")
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
    except InputError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except (TypeError, IndexError, AttributeError) as err:
        raise ModelFileError(f"{path}: config.json is malformed ({type(err).__name__}: {err})") from None
    if input_shape is None:
        build = (config.get("build_config") or {}).get("input_shape")
        if not build:
            raise ModelFileError(f"{path}: the model's input shape is not recorded")
        input_shape = tuple(build[1:])
    try:
        needed = model.weight_bytes(input_shape)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: the input shape {input_shape} is invalid ({err})") from None
    weights_size = len(_read_member(path, KERAS_WEIGHTS_MEMBER))
    if needed > 2 * weights_size:  # checked before any weight is allocated (float64 may hold float32's)
        raise ModelFileError(f"{path}: the architecture needs {needed} bytes of weights, the file holds {weights_size}")
    try:
        model.build(input_shape)
    except InputError as err:
        raise ModelFileError(f"{path}: {err}") from None
    load_keras_weights(model, path)
    if compile and isinstance(config.get("compile_config"), dict):
        _compile_from_keras(model, config["compile_config"], path)
    return model

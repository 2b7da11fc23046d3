"""Files: saving and loading models, atomic writes, PNG pictures.

A saved model is one NumPy ``.npz`` archive (a zip of ``.npy`` arrays):

* ``config``: the architecture, compile settings and training state (epochs
  done, optimizer step count, random generator states) as UTF-8 JSON bytes;
* ``layer_<i>/<param>``: each parameter, float32, e.g. ``layer_0/kernel``;
* ``optimizer/<i>/<param>/<slot>``: the optimizer's state for that parameter.

It is read with ``allow_pickle=False``: loading never runs code from the file.
Every save goes to a temporary file that is renamed into place, so a crash or
a full disk never leaves a half-written model behind.
"""
import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import InputError, ModelFileError

FORMAT = "cnn-from-scratch model"
VERSION = 1


def atomic_write_bytes(path, payload):
    """Write ``payload`` to ``path`` all or nothing: a temporary file beside it,
    flushed to disk, then renamed into place. On any failure the old file, if
    there was one, is untouched and the temporary file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def model_config(model):
    """The JSON-able description of a model: architecture, compile settings and
    training state (optimizer step count, random generators, epochs done)."""
    compiled = None
    if model.loss is not None:
        from .losses import serialize

        compiled = {"loss": serialize(model.loss), "optimizer": model.optimizer.get_config(),
                    "metrics": model.metrics}
    generators = {"model": model.rng.bit_generator.state}
    for i, layer in enumerate(model.layers):
        if getattr(layer, "rng", None) is not None:
            generators[f"layer_{i}"] = layer.rng.bit_generator.state
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": model.name,
        "input_shape": list(model.input_shape),
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


def layer_spec(layer):
    """How a layer is saved: its class name and its constructor's arguments."""
    config = layer.get_config()
    try:
        json.dumps(config)
    except TypeError as err:
        raise InputError(f"layer {layer.name!r} ({type(layer).__name__}): get_config() must return JSON values "
                         f"(numbers, strings, lists, dicts) so the model can be saved ({err})") from None
    return {"class_name": type(layer).__name__, "config": config}


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


MAX_CONFIG_BYTES = 1 << 20
# deflate cannot compress better than about 1032:1: a compressed file that
# claims more data than that is lying, and is refused before anything is read
MAX_DEFLATE_RATIO = 1100
NPY_HEADER_ALLOWANCE = 4096  # an .npy member is its header plus exactly the array's bytes


def _read_member(archive, info, max_bytes, path):
    """One .npy member, refused before reading if it is larger than it can justify."""
    if info.file_size > max_bytes:
        raise ModelFileError(f"{path}: {info.filename} holds {info.file_size} bytes, at most {max_bytes} expected")
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _restore_generator(rng, state, path):
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: a random generator state is corrupt ({err})") from None


def load_model(path, custom_objects=None, compile=True):
    """Load a model saved by :func:`save_model` (``.npz``) or a Keras 3 ``.keras`` file.

    Nothing in the file is executed (no pickle) and no member is read before
    its size is checked against what the architecture needs. A user's own
    layer classes are found through ``custom_objects={'Name': cls}`` or
    :func:`cnn.layers.register`.

    Raises
    ------
    ModelFileError
        If the file is missing, not a model archive, truncated, or its weights
        do not match its architecture (naming the layer and the shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise InputError(f"custom_objects must be a dict of name -> class, got {type(custom_objects).__name__}")
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" in archive.namelist():  # a Keras 3 .keras file
                from .keras_io import load_keras_model
                return load_keras_model(path, custom_objects=custom_objects, compile=compile)
            return _load_from_archive(archive, path, custom_objects or {}, compile)
    except ModelFileError:
        raise
    except Exception as err:  # untrusted bytes: whatever breaks, say so in our own terms
        raise ModelFileError(f"{path}: not a readable model file ({type(err).__name__}: {err})") from None


def _load_from_archive(archive, path, custom_objects, compile):
    from .layers import get_class
    from .model import Sequential

    members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    if "config" not in members:
        raise ModelFileError(f"{path}: no model configuration inside")
    raw = _read_member(archive, members.pop("config"), MAX_CONFIG_BYTES, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: the model configuration is not text")
    try:
        config = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path}: the model configuration is corrupt ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a {FORMAT} file")
    if config.get("version") != VERSION:
        raise ModelFileError(f"{path}: format version {config.get('version')!r}, this engine reads {VERSION}")

    model = Sequential(name=str(config.get("name", "sequential")))
    try:
        for spec in config["layers"]:
            cls = get_class(spec["class_name"], custom_objects)
            if cls is None:
                raise ModelFileError(f"{path}: unknown layer type {spec['class_name']!r}; for a layer of your "
                                     "own pass custom_objects={'Name': TheClass} or decorate it with @cnn.layers.register")
            if not isinstance(spec["config"], dict):
                raise ModelFileError(f"{path}: layer {spec['class_name']!r} has no valid config")
            model.add(cls.from_config(dict(spec["config"])))
        # refuse an architecture bigger than the file's weights before allocating it
        needed = model.weight_bytes(config["input_shape"])
        held = sum(min(info.file_size, MAX_DEFLATE_RATIO * info.compress_size + NPY_HEADER_ALLOWANCE)
                   for info in members.values())
        if needed > held:
            raise ModelFileError(f"{path}: the architecture needs {needed} bytes of weights, the file holds at most {held}")
        model.build(config["input_shape"])
        if config.get("compile") and compile:
            model.compile(**config["compile"])
        training = config.get("training") or {}
        slots = training.get("optimizer_slots", [])
    except ModelFileError:
        raise
    except InputError as err:
        raise ModelFileError(f"{path}: the architecture is invalid ({err})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ModelFileError(f"{path}: the architecture is invalid ({type(err).__name__}: {err})") from None

    expected = {f"layer_{i}/{name}": layer.params[name] for i, layer in enumerate(model.layers) for name in layer.params}
    owners = {f"layer_{i}/{name}": (layer, name) for i, layer in enumerate(model.layers) for name in layer.params}
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
        value = _read_member(archive, members[key], like.nbytes + NPY_HEADER_ALLOWANCE, path)
        if value.shape != like.shape or value.dtype not in (np.float32, np.float64):
            where = f"layer {owners[key][0].name!r} {owners[key][1]}" if key in owners else key
            raise ModelFileError(
                f"{path}: {where} should be {like.dtype} {like.shape} (float32 or float64), "
                f"the file has {value.dtype} {value.shape}"
            )
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


def write_png(path, image, scale=1):
    """Write a grayscale picture as PNG, with no imaging library.

    Parameters
    ----------
    image : uint8 array (rows, cols); 0 is black, 255 white
    scale : int, each pixel becomes a scale x scale block
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InputError(f"a PNG image must be uint8 (rows, cols), got {image.dtype} {image.shape}")
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    rows, cols = image.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row.tobytes() for row in image)  # filter type 0 on each row
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0))  # 8-bit grayscale
           + chunk(b"IDAT", zlib.compress(raw, 9))
           + chunk(b"IEND", b""))
    atomic_write_bytes(path, png)


def read_png(path):
    """Read an 8-bit PNG (grayscale, gray+alpha, RGB or RGBA; not interlaced)
    as a uint8 grayscale array (rows, cols). Colour is averaged to gray and
    alpha is dropped.

    Raises
    ------
    DataFileError
        On anything that is not such a PNG.
    """
    from .errors import DataFileError

    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataFileError(f"{path}: not a PNG file")
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) < length:
            raise DataFileError(f"{path}: truncated PNG chunk {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise DataFileError(f"{path}: PNG without an image header or data")
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace != 0:
        raise DataFileError(f"{path}: only 8-bit, non-interlaced gray/RGB(A) PNGs are read "
                            f"(bit depth {depth}, colour type {colour}, interlace {interlace})")
    if width * height > 2**26:
        raise DataFileError(f"{path}: {width}x{height} is too large for a digit")
    stride = width * channels
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), (stride + 1) * height)
    except zlib.error as err:
        raise DataFileError(f"{path}: corrupt PNG data ({err})") from None
    if len(raw) != (stride + 1) * height:
        raise DataFileError(f"{path}: PNG data is truncated")
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    pixels = np.zeros((height, stride), np.int32)
    previous = np.zeros(stride, np.int32)
    for r in range(height):  # undo each row's filter (PNG spec, section 9)
        kind, line = rows[r, 0], rows[r, 1:].astype(np.int32)
        out = np.zeros(stride, np.int32)
        for i in range(stride):
            left = out[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 0:
                predicted = 0
            elif kind == 1:
                predicted = left
            elif kind == 2:
                predicted = up
            elif kind == 3:
                predicted = (left + up) // 2
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predicted = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
            else:
                raise DataFileError(f"{path}: unknown PNG filter type {kind} in row {r}")
            out[i] = (line[i] + predicted) & 0xFF
        pixels[r] = previous = out
    image = pixels.reshape(height, width, channels)
    colour_channels = image[..., : 3 if channels >= 3 else 1]
    return np.round(colour_channels.mean(axis=-1)).astype(np.uint8)

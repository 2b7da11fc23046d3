"""Saving and loading models in either format, and Keras's ``keras.saving`` names.

This module stands above the models and the two formats: :mod:`cnn.io` (the
engine's ``.npz``) and :mod:`cnn.keras_io` (Keras's ``.keras`` and
``.weights.h5``) each import the models and the file primitives
(:mod:`cnn.files`) and neither imports the other; a model's ``save`` reaches
them through here, when called, as Keras's ``Model.save`` reaches
``keras.saving``.
"""
from pathlib import Path

from .errors import InputError, ModelFileError
from .files import open_archive
from .io import load_npz_archive, model_config, save_model as save_npz
from .keras_io import load_keras_model, load_keras_weights, save_keras
from .layers import register
from .limits import open_regular


def save_model(model, path):
    """Save ``model`` in the format its name asks for: ``.keras`` a Keras 3 file,
    ``.onnx`` an ONNX graph for inference (:mod:`cnn.onnx`), anything else the
    engine's ``.npz`` (weights alone: ``model.save_weights``)."""
    if Path(path).suffix == ".keras":
        save_keras(model, path)
    elif Path(path).suffix == ".onnx":
        from .onnx import export

        export(model, path)
    elif str(path).endswith(".h5"):
        raise InputError(f"{path}: the legacy HDF5 model format is not written; use a .keras or .npz name "
                         "(weights alone: model.save_weights('name.weights.h5'))")
    else:
        save_npz(model, path)


def save_weights(model, path):
    if not str(path).endswith(".weights.h5"):
        raise InputError(f"{path}: save_weights writes Keras's format; the name must end in .weights.h5")
    save_keras(model, path)


def load_weights(model, path):
    if not str(path).endswith((".weights.h5", ".keras")):
        raise InputError(f"{path}: load_weights reads a .weights.h5 or .keras file")
    load_keras_weights(model, path)


def config_of(model):
    """What ``model.get_config()`` returns for a graph: the ``.npz`` format's description."""
    return model_config(model)


def load_model(path, custom_objects=None, compile=True):
    """Load a model saved by :func:`save_model` (``.npz``), a Keras 3 ``.keras``
    file, or an ONNX file (``.onnx``: :mod:`cnn.onnx_import`, not compiled).

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
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise InputError(f"custom_objects must be a dict of name -> class, got {type(custom_objects).__name__}")
    if path.suffix == ".onnx":  # an ONNX graph, PyTorch's export or another: built as an engine model
        from .onnx import load

        return load(path)
    with open_regular(path, ModelFileError) as f:
        try:
            archive = open_archive(f, path)
            with archive:
                if "config.json" in archive.namelist():  # a Keras 3 .keras file
                    return load_keras_model(path, custom_objects=custom_objects, compile=compile, _archive=archive)
                return load_npz_archive(archive, path, custom_objects or {}, compile)
        except ModelFileError:
            raise
        except Exception as err:  # untrusted bytes: whatever breaks, say so in our own terms
            raise ModelFileError(f"{path}: not a readable model file ({type(err).__name__}: {err})") from None


def register_keras_serializable(package="Custom", name=None):
    """Register a layer class under its name (and ``package>name``), as Keras's
    decorator does, so that saved models holding it load again."""
    def add(cls):
        register(cls, name=name or cls.__name__)
        register(cls, name=f"{package}>{name or cls.__name__}")
        return cls

    return add

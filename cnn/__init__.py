"""A convolutional neural network engine in NumPy and numba, with Keras's API.

Code written for Keras runs with ``keras.`` replaced by ``cnn.``:
``cnn.Sequential``, ``cnn.Input``, ``cnn.layers.Conv2D``, ``cnn.optimizers.Adam``,
``cnn.losses.SparseCategoricalCrossentropy``, ``cnn.callbacks.EarlyStopping``,
``cnn.models.load_model``, ``cnn.utils.to_categorical``...

The pieces, each in its own module:

* :mod:`cnn.layers`       layers by kind (core, convolution, pooling, normalization, activation, reshaping)
* :mod:`cnn.activations`  activations by Keras's names
* :mod:`cnn.losses`       cross-entropies (categorical, sparse, binary), mean squared error
* :mod:`cnn.metrics`      accuracies by Keras's names
* :mod:`cnn.optimizers`   SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, learning-rate schedules
* :mod:`cnn.initializers`, :mod:`cnn.regularizers`
* :mod:`cnn.model`        Sequential: compile, fit, evaluate, predict, summary, save
* :mod:`cnn.callbacks`    ModelCheckpoint, EarlyStopping, ReduceLROnPlateau, LearningRateScheduler, ...
* :mod:`cnn.data`         IDX and text-format readers, one-hot, load_mnist
* :mod:`cnn.datasets`     Keras's ``datasets.mnist`` / ``fashion_mnist.load_data()``, from files here
* :mod:`cnn.missing`      the Keras names the engine lacks, each refused with what to use instead
* :mod:`cnn.io`           model files, atomic writes, PNG; :mod:`cnn.keras_io` Keras 3 files
* :mod:`cnn.gradcheck`    finite-difference gradient checks
* :mod:`cnn.onnx`         ONNX export (``model.save("m.onnx")``), for ONNX Runtime
* :mod:`cnn.backend`      ``floatx`` / ``set_floatx``
* :mod:`kernels`          the compute kernels (numba) and their NumPy twins
"""
from . import (activations, backend, callbacks, datasets, initializers, layers, losses, metrics, models,
               onnx, optimizers, regularizers, saving, utils)
from .backend import floatx, set_floatx
from .callbacks import (Callback, EarlyStopping, History, LambdaCallback, LearningRateScheduler, ModelCheckpoint,
                        ModelSaver, ReduceLROnPlateau)
from .errors import CNNError, DataFileError, InputError, ModelFileError, NotInEngineError, TrainingDivergedError
from .saving import load_model, save_model
from .layers import (ELU, Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                     GlobalAveragePooling2D, GlobalMaxPooling2D, Input, LeakyReLU, MaxPooling2D, ReLU, Reshape,
                     Softmax, ZeroPadding2D)
from .model import Sequential
from .functional import Model
from .random import set_seed

from ._version import __version__

__all__ = [
    "Activation", "AveragePooling2D", "BatchNormalization", "Callback", "CNNError", "Conv2D", "DataFileError",
    "Dense", "Dropout", "ELU", "EarlyStopping", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "History", "Input", "InputError", "Model", "LambdaCallback", "LearningRateScheduler", "LeakyReLU", "MaxPooling2D",
    "ModelCheckpoint", "ModelFileError", "ModelSaver", "NotInEngineError", "ReLU", "ReduceLROnPlateau", "Reshape", "Sequential",
    "Softmax", "TrainingDivergedError", "ZeroPadding2D", "floatx", "load_model", "save_model", "set_floatx",
    "set_seed",
]


def __getattr__(name):
    """A Keras name the engine lacks: the engine's error, saying what to use instead (cnn.missing)."""
    from .missing import TOP, refuse

    raise refuse("cnn", name, TOP)

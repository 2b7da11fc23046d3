"""Named architectures for the command line and the docs, written as Keras
code is written (each with its compile settings):

* ``chapter``: the chapter's 784-32-64-100-10 CNN (:mod:`cnn.chapter`);
* ``lenet5``: LeNet-5 in its usual Keras form: 5x5 tanh convolutions, 2x2
  average pooling, dense 120-84-10, Adam and sparse cross-entropy;
* ``small_vgg``: two 3x3 conv-BatchNorm-ReLU blocks per stage, max pooling,
  global average pooling and a softmax, for 28x28 or 32x32 images;
* ``small``: a tiny CNN that trains in seconds, for trying things out.

``lenet5`` and ``small_vgg`` are written against the Keras API itself:
``lenet5(api=keras)`` builds the same model in Keras (what the comparisons in
``benchmarks/`` do).
"""
import sys

from .model import Sequential


def _api(api):
    return sys.modules[__package__] if api is None else api


def lenet5(input_shape=(28, 28, 1), classes=10, optimizer="adam", api=None):
    api = _api(api)
    layers = api.layers
    model = api.Sequential([
        api.Input(shape=input_shape),
        layers.Conv2D(6, kernel_size=5, activation="tanh", padding="same"),
        layers.AveragePooling2D(pool_size=2, strides=2),
        layers.Conv2D(16, kernel_size=5, activation="tanh"),
        layers.AveragePooling2D(pool_size=2, strides=2),
        layers.Flatten(),
        layers.Dense(120, activation="tanh"),
        layers.Dense(84, activation="tanh"),
        layers.Dense(classes, activation="softmax"),
    ], name="lenet5")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def small_vgg(input_shape=(28, 28, 1), classes=10, optimizer="adam", width=16, api=None):
    api = _api(api)
    layers = api.layers

    def block(filters):
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                layers.ReLU()]

    model = api.Sequential([
        api.Input(shape=input_shape),
        *block(width), *block(width), layers.MaxPooling2D(),
        *block(2 * width), *block(2 * width), layers.MaxPooling2D(),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.3),
        layers.Dense(classes, activation="softmax"),
    ], name="small_vgg")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def small(input_shape=(28, 28, 1), classes=10, optimizer="adadelta"):
    from . import layers

    model = Sequential([
        layers.Conv2D(8, 3, padding="same", activation="relu", input_shape=input_shape),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(32, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["acc"])
    return model


def chapter(input_shape=(28, 28, 1), classes=10, optimizer="adadelta"):
    from .chapter import build_model

    if tuple(input_shape) != (28, 28, 1) or classes != 10:
        raise ValueError("the chapter's model is for 28x28 grayscale images and 10 classes")
    return build_model(optimizer)


ARCHITECTURES = {"chapter": chapter, "lenet5": lenet5, "small_vgg": small_vgg, "small": small}
# which label form each one's loss takes
SPARSE_LABELS = {"lenet5", "small_vgg"}

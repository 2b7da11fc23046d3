"""Named architectures for the command line and the docs, written as Keras
code is written (each with its compile settings):

* ``chapter``: the chapter's 784-32-64-100-10 CNN (:mod:`cnn.chapter`);
* ``lenet5``: LeNet-5 in its usual Keras form: 5x5 tanh convolutions, 2x2
  average pooling, dense 120-84-10, Adam and sparse cross-entropy;
* ``small_vgg``: two 3x3 conv-BatchNorm-ReLU blocks per stage, max pooling,
  global average pooling and a softmax, for 28x28 or 32x32 images;
* ``small``: a tiny CNN that trains in seconds, for trying things out;
* ``resnet``: He et al.'s ResNet for small images (depth 6n + 2: three stages
  of n basic blocks, 16, 32 and 64 filters, the second and third stage
  halving the size; ResNet-20 is depth 20 on 32x32x3), a functional model with
  a 1x1 projection shortcut where a stage changes shape; ``resnet8`` is its
  one-block-a-stage form for 28x28 digits.

Each takes ``augmentation=``: layers applied first, right after the input
(as Keras tutorials put ``data_augmentation`` in the model), so they act in
``fit`` only; :func:`digit_augmentation` is what ``cnn train --augment``
uses.

``lenet5``, ``small_vgg`` and ``resnet`` are written against the Keras API
itself: ``lenet5(api=keras)`` builds the same model in Keras (what the
comparisons in ``benchmarks/`` do), with the same layer names.
"""
import sys

from .model import Sequential


def _api(api):
    return sys.modules[__package__] if api is None else api


def digit_augmentation(api=None):
    """Augmentation for handwritten digits (no flips: a mirrored 7 is no 7):
    rotations up to 0.05 of a turn (18 degrees) either way, shifts up to 10%
    of the height and of the width, zooms up to 10% in or out, the cells from
    outside the image filled with 0, the digits' background. Active in
    training only; each layer draws from the seeded generators."""
    layers = _api(api).layers
    return [layers.RandomRotation(0.05, fill_mode="constant"),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
            layers.RandomZoom(0.1, fill_mode="constant")]


def _start(api, input_shape, augmentation):
    """A Sequential model's first entries: the input, then the augmentation layers."""
    return [api.Input(shape=input_shape), *augmentation]


def lenet5(input_shape=(28, 28, 1), classes=10, optimizer="adam", api=None, augmentation=()):
    api = _api(api)
    layers = api.layers
    model = api.Sequential([
        *_start(api, input_shape, augmentation),
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


def small_vgg(input_shape=(28, 28, 1), classes=10, optimizer="adam", width=16, api=None, augmentation=()):
    api = _api(api)
    layers = api.layers

    def block(filters):
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                layers.ReLU()]

    model = api.Sequential([
        *_start(api, input_shape, augmentation),
        *block(width), *block(width), layers.MaxPooling2D(),
        *block(2 * width), *block(2 * width), layers.MaxPooling2D(),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.3),
        layers.Dense(classes, activation="softmax"),
    ], name="small_vgg")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def resnet(input_shape=(32, 32, 3), classes=10, depth=20, optimizer="adam", api=None, augmentation=()):
    """ResNet for small images (He et al. 2016, section 4.2), depth 6n + 2."""
    api = _api(api)
    layers = api.layers
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a ResNet for small images has depth 6n + 2 (8, 14, 20, 32...), got {depth!r}")
    blocks = (depth - 2) // 6

    def conv_bn(x, filters, strides, name, relu=True):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x

    inputs = x = api.Input(shape=input_shape)
    for layer in augmentation:
        x = layer(x)
    x = conv_bn(x, 16, 1, "stem")
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks):
            name = f"stage{stage + 1}_block{block + 1}"
            strides = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(x, filters, strides, f"{name}_a")
            y = conv_bn(y, filters, 1, f"{name}_b", relu=False)
            if strides != 1 or x.shape[-1] != filters:  # the shape changes: a 1x1 projection (option B)
                x = layers.Conv2D(filters, 1, strides=strides, use_bias=False, kernel_initializer="he_normal",
                                  name=f"{name}_projection")(x)
                x = layers.BatchNormalization(name=f"{name}_projection_bn")(x)
            x = layers.add([y, x], name=f"{name}_add")
            x = layers.Activation("relu", name=f"{name}_out")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    model = api.Model(inputs, outputs, name=f"resnet{depth}")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def resnet8(input_shape=(28, 28, 1), classes=10, optimizer="adam", api=None, augmentation=()):
    """The one-block-a-stage ResNet (depth 8) for 28x28 digits."""
    return resnet(input_shape, classes, depth=8, optimizer=optimizer, api=api, augmentation=augmentation)


def small(input_shape=(28, 28, 1), classes=10, optimizer="adadelta", augmentation=()):
    from . import layers

    model = Sequential([
        *_start(_api(None), input_shape, augmentation),
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(32, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["acc"])
    return model


def chapter(input_shape=(28, 28, 1), classes=10, optimizer="adadelta", augmentation=()):
    from .chapter import build_model

    if tuple(input_shape) != (28, 28, 1) or classes != 10:
        raise ValueError("the chapter's model is for 28x28 grayscale images and 10 classes")
    return build_model(optimizer, augmentation)


ARCHITECTURES = {"chapter": chapter, "lenet5": lenet5, "small_vgg": small_vgg, "small": small, "resnet": resnet8}
# which label form each one's loss takes
SPARSE_LABELS = {"lenet5", "small_vgg", "resnet"}

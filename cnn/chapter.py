"""The chapter's pieces, shared by ``scripts/mnist_cnn.py`` and the ``cnn`` command."""
import numpy as np

from .callbacks import Callback
from .layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from .model import Sequential

# The chapter's list lacks a comma between "six" and "seven"; this one does not.
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def class_name(k):
    """A class's name: the digit's word for 0..9, else 'class k' (models with more outputs)."""
    return LABELS[k] if 0 <= k < len(LABELS) else f"class {k}"


def build_model(optimizer="adadelta", augmentation=()):
    """The chapter's 784-32-64-100-10 CNN, compiled as the chapter compiles it.

    'adadelta' means learning rate 1.0, rho 0.95, epsilon 1e-7, as in the
    chapter's Keras. ``augmentation``: layers put before the first
    convolution (none in the chapter).
    """
    model = Sequential()
    if augmentation:
        model.add(Input((28, 28, 1)))
        for layer in augmentation:
            model.add(layer)
    model.add(Conv2D(32, (3, 3), strides=(1, 1), padding="same", activation="relu",
                     kernel_initializer="glorot_uniform", **({} if augmentation else {"input_shape": (28, 28, 1)})))
    model.add(Conv2D(64, (3, 3), strides=(1, 1), padding="same", activation="relu",
                     kernel_initializer="glorot_uniform"))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Flatten())
    model.add(Dense(100, activation="relu", kernel_initializer="glorot_uniform"))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation="softmax", kernel_initializer="glorot_uniform"))
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["acc"])
    return model


class EpochLogger(Callback):
    """Print the chapter's line every ``every`` epochs, and after the last one
    (``last``, 0-based): ``epoch =    0 loss = 1.9767 accuracy = 30.80%``,
    the training loss and accuracy averaged over the epoch's batches."""

    def __init__(self, every, last=None):
        super().__init__()
        self.every = max(1, every)
        self.last = last

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every == 0 or epoch == self.last:
            print(f"epoch = {epoch:4d} loss = {logs['loss']:0.4f} accuracy = {logs['acc'] * 100:0.2f}%")


def made_up_digit():
    """The chapter's hand-made image, raw 0..255 (28, 28): a vertical stroke of
    180 in column 9 (rows 5..22) and a diagonal of 250 (rows/cols 9..18)."""
    image = np.zeros((28, 28), dtype=np.float32)
    for row in range(5, 23):
        image[row][9] = 180
    for rc in range(9, 19):
        image[rc][rc] = 250
    return image

"""Keras's ``keras.utils`` names."""
from .data import one_hot


def to_categorical(labels, num_classes=None):
    """Integer labels (n,) to one-hot float rows (n, num_classes), as
    ``keras.utils.to_categorical`` (classes: the largest label + 1 by default)."""
    import numpy as np

    labels = np.asarray(labels)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    return one_hot(labels, num_classes)

"""Metrics by Keras's names. Each is a function ``(y_pred, y_true) -> sum over
the batch's samples``; the training loop divides by the number of samples, so
an epoch's figure is the mean over its samples, as Keras reports it.

'accuracy' (or 'acc') picks the accuracy that fits the loss, as Keras does:
sparse categorical for integer labels, binary for a binary cross-entropy or a
single output, categorical otherwise.
"""
import numpy as np

from .errors import InputError


def confusion_matrix(true, predicted, classes=10):
    """counts[t, p]: how many samples of class t were predicted as p."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(true), np.asarray(predicted)), 1)
    return counts


def categorical_accuracy(y_pred, y_true):
    return float((y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).sum())


def sparse_categorical_accuracy(y_pred, y_true):
    return float((y_pred.argmax(axis=-1) == np.asarray(y_true).reshape(-1)).sum())


def binary_accuracy(y_pred, y_true, threshold=0.5):
    """The share of outputs on the right side of 0.5, per sample, summed."""
    right = (y_pred > threshold) == (y_true > threshold)
    return float(right.reshape(right.shape[0], -1).mean(axis=1).sum())


def mean_absolute_error(y_pred, y_true):
    """|prediction - target| averaged over each sample's values, summed over samples
    (Keras averages over the last axis, then over everything else: the same mean)."""
    error = np.abs(y_pred - y_true)
    return float(error.reshape(error.shape[0], -1).mean(axis=1).sum())


def mean_squared_error(y_pred, y_true):
    error = np.square(y_pred - y_true)
    return float(error.reshape(error.shape[0], -1).mean(axis=1).sum())


NAMED = {"categorical_accuracy": categorical_accuracy,
         "sparse_categorical_accuracy": sparse_categorical_accuracy,
         "binary_accuracy": binary_accuracy,
         "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
         "mse": mean_squared_error, "mean_squared_error": mean_squared_error}


def get(name, loss):
    """The metric function for a Keras metric name, given the compiled loss."""
    from .losses import BinaryCrossentropy, SparseCategoricalCrossentropy

    if name in ("accuracy", "acc"):
        if isinstance(loss, SparseCategoricalCrossentropy):
            return sparse_categorical_accuracy
        if isinstance(loss, BinaryCrossentropy):
            return binary_accuracy
        return categorical_accuracy
    if name in NAMED:
        return NAMED[name]
    raise InputError(f"unknown metric {name!r}; known: 'accuracy', 'acc', {', '.join(map(repr, sorted(NAMED)))}")

"""Weight regularizers: a penalty added to the loss, and its gradient.

As in Keras, the penalty is added to the loss that ``fit`` reports and
minimises: ``L2(l2)`` adds ``l2 * sum(w ** 2)`` (gradient ``2 * l2 * w``),
``L1(l1)`` adds ``l1 * sum(|w|)``.
"""
import numpy as np

from .errors import InputError


class Regularizer:
    def get_config(self):
        return {}


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        for name, value in (("l1", l1), ("l2", l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InputError(f"regularizer {name} must be a number >= 0, got {value!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        return float(self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum())

    def gradient(self, w):
        return (self.l1 * np.sign(w) + 2 * self.l2 * w).astype(w.dtype, copy=False)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


CLASSES = {"L1L2": L1L2, "L2": L2, "L1": L1}
NAMES = {"l2": L2, "l1": L1, "l1_l2": L1L2}


def get(identifier):
    """A regularizer from a name ('l2', Keras's default 0.01), a config dict or an object."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in NAMES:
        return NAMES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in CLASSES:
        config = identifier.get("config") or {}
        try:
            return CLASSES[identifier["class_name"]](**config)
        except TypeError as err:
            raise InputError(f"regularizer {identifier['class_name']}: {err}") from None
    raise InputError(f"unknown regularizer {identifier!r}; known: {sorted(NAMES)}")


def serialize(regularizer):
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}

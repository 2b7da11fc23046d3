"""Seeds.

``set_seed(s)`` fixes every random choice the engine makes afterwards: initial
weights, dropout masks and the shuffling of each epoch. Each consumer (a layer,
a model) takes its own generator from one seed sequence in the order the
program creates them, so the same program with the same seed gives the same
numbers, and adding a layer does not change what another layer draws from.

The sequence is shared by every thread and taken under a lock: two threads
building models at once each get whole children, never the same one. Which
thread gets which child then depends on the order they ask; for the same
numbers in each, build the models one after the other (then train them in
threads: each model's generators are its own).
"""
import threading

import numpy as np

from .errors import InputError

_sequence = np.random.SeedSequence(None)
_lock = threading.Lock()


def set_seed(seed):
    """Make everything random from now on reproducible from ``seed`` (an int >= 0)."""
    global _sequence
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a non-negative int, got {seed!r}")
    with _lock:
        _sequence = np.random.SeedSequence(int(seed))


def new_generator():
    """A fresh generator, the next child of the seed sequence."""
    with _lock:
        child = _sequence.spawn(1)[0]
    return np.random.default_rng(child)

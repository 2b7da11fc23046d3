"""Optimizers against Keras 3: the same gradients, the same variables after 20 steps."""
import numpy as np
import pytest

from cnn import optimizers
from cnn.errors import InputError


class _Holder:
    """The smallest thing an optimizer steps: one layer-like object."""

    def __init__(self, value):
        self.params = {"w": value.copy()}
        self.grads = {}
        self.trainable_names = ["w"]


CASES = [
    ("adadelta_chapter", lambda: optimizers.get("adadelta"), lambda k: k.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7)),
    ("adadelta_keras3_default", lambda: optimizers.Adadelta(), lambda k: k.optimizers.Adadelta()),
    ("sgd", lambda: optimizers.SGD(0.1), lambda k: k.optimizers.SGD(0.1)),
    ("sgd_momentum", lambda: optimizers.SGD(0.1, momentum=0.9), lambda k: k.optimizers.SGD(0.1, momentum=0.9)),
    ("sgd_nesterov", lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True), lambda k: k.optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
    ("rmsprop", lambda: optimizers.RMSprop(0.01), lambda k: k.optimizers.RMSprop(0.01)),
    ("adagrad", lambda: optimizers.Adagrad(0.1), lambda k: k.optimizers.Adagrad(0.1)),
    ("adam", lambda: optimizers.Adam(0.01), lambda k: k.optimizers.Adam(0.01)),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_keras_over_20_steps(keras, name, ours, theirs, rng):
    start = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(20)]
    holder, opt = _Holder(start), ours()
    variable = keras.Variable(start)
    reference = theirs(keras)
    for g in grads:
        holder.grads["w"] = g
        opt.step([holder])
        reference.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
    np.testing.assert_allclose(holder.params["w"], keras.ops.convert_to_numpy(variable), rtol=2e-5, atol=2e-6)
    assert holder.params["w"].dtype == np.float32


def test_named_optimizers():
    adadelta = optimizers.get("adadelta")
    assert (adadelta.learning_rate, adadelta.rho, adadelta.epsilon) == (1.0, 0.95, 1e-7)
    assert optimizers.get("Adam").learning_rate == 0.001
    assert isinstance(optimizers.get({"name": "SGD", "learning_rate": 0.5}), optimizers.SGD)
    with pytest.raises(InputError, match="unknown optimizer"):
        optimizers.get("adadeltaa")
    with pytest.raises(InputError, match="learning_rate"):
        optimizers.SGD(-1)

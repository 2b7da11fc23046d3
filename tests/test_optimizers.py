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
    # the options a course uses, each against Keras 3's own optimizer
    ("rmsprop_momentum", lambda: optimizers.RMSprop(0.01, momentum=0.5), lambda k: k.optimizers.RMSprop(0.01, momentum=0.5)),
    ("rmsprop_centered", lambda: optimizers.RMSprop(0.01, centered=True), lambda k: k.optimizers.RMSprop(0.01, centered=True)),
    ("rmsprop_both", lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True),
     lambda k: k.optimizers.RMSprop(0.01, momentum=0.9, centered=True)),
    ("adam_amsgrad", lambda: optimizers.Adam(0.01, amsgrad=True), lambda k: k.optimizers.Adam(0.01, amsgrad=True)),
    ("adamw", lambda: optimizers.AdamW(0.01), lambda k: k.optimizers.AdamW(0.01)),
    ("adamw_decay", lambda: optimizers.AdamW(0.01, weight_decay=0.1), lambda k: k.optimizers.AdamW(0.01, weight_decay=0.1)),
    ("sgd_weight_decay", lambda: optimizers.SGD(0.1, weight_decay=0.05), lambda k: k.optimizers.SGD(0.1, weight_decay=0.05)),
    ("sgd_clipnorm", lambda: optimizers.SGD(0.1, clipnorm=0.5), lambda k: k.optimizers.SGD(0.1, clipnorm=0.5)),
    ("sgd_global_clipnorm", lambda: optimizers.SGD(0.1, global_clipnorm=0.5),
     lambda k: k.optimizers.SGD(0.1, global_clipnorm=0.5)),
    ("adam_clipvalue", lambda: optimizers.Adam(0.01, clipvalue=0.3), lambda k: k.optimizers.Adam(0.01, clipvalue=0.3)),
    ("sgd_exponential_decay", lambda: optimizers.SGD(optimizers.ExponentialDecay(0.1, 5, 0.5)),
     lambda k: k.optimizers.SGD(k.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5))),
    ("adam_staircase_decay", lambda: optimizers.Adam(optimizers.ExponentialDecay(0.01, 3, 0.7, staircase=True)),
     lambda k: k.optimizers.Adam(k.optimizers.schedules.ExponentialDecay(0.01, 3, 0.7, staircase=True))),
    ("adagrad_inverse_time", lambda: optimizers.Adagrad(optimizers.InverseTimeDecay(0.1, 4, 0.5)),
     lambda k: k.optimizers.Adagrad(k.optimizers.schedules.InverseTimeDecay(0.1, 4, 0.5))),
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


def test_global_clipnorm_clips_all_weights_together(keras, rng):
    holder, opt = _Holder(rng.standard_normal((4, 3)).astype(np.float32)), optimizers.SGD(0.1, global_clipnorm=1.0)
    holder.params["v"] = rng.standard_normal(5).astype(np.float32)
    holder.trainable_names = ["w", "v"]
    variables = [keras.Variable(holder.params["w"]), keras.Variable(holder.params["v"])]
    reference = keras.optimizers.SGD(0.1, global_clipnorm=1.0)
    for _ in range(5):
        grads = {"w": rng.standard_normal((4, 3)).astype(np.float32) * 3, "v": rng.standard_normal(5).astype(np.float32)}
        holder.grads = grads
        opt.step([holder])
        reference.apply_gradients([(keras.ops.convert_to_tensor(grads["w"]), variables[0]),
                                   (keras.ops.convert_to_tensor(grads["v"]), variables[1])])
    for name, variable in zip(["w", "v"], variables):
        np.testing.assert_allclose(holder.params[name], keras.ops.convert_to_numpy(variable), rtol=2e-5, atol=2e-6)


def test_unsupported_optimizer_arguments_are_refused_by_name():
    with pytest.raises(InputError, match="use_ema"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(InputError, match="unknown argument.*betas"):
        optimizers.Adam(betas=(0.9, 0.99))
    with pytest.raises(InputError, match="momentum"):
        optimizers.RMSprop(momentum=-1)
    with pytest.raises(InputError, match="clipnorm and global_clipnorm"):
        optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)


def test_named_optimizers():
    adadelta = optimizers.get("adadelta")
    assert (adadelta.learning_rate, adadelta.rho, adadelta.epsilon) == (1.0, 0.95, 1e-7)
    assert optimizers.get("Adam").learning_rate == 0.001
    assert isinstance(optimizers.get({"name": "SGD", "learning_rate": 0.5}), optimizers.SGD)
    with pytest.raises(InputError, match="unknown optimizer"):
        optimizers.get("adadeltaa")
    with pytest.raises(InputError, match="learning_rate"):
        optimizers.SGD(-1)

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The reference is TensorFlow's plain (Eigen) CPU kernels. Its oneDNN kernels
# returned zeros for a 'same' convolution with a window wider than the input
# (tf.nn.conv2d on a (2, 2, 1, 1) input, a (1, 2) kernel, stride (1, 2) gave
# [1, 0, 3, 0] instead of [1, 2, 3, 4]; found by hypothesis, TF 2.21).
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

# Deadlines are off: the first call of a numba kernel compiles it.
settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on TensorFlow, the reference. Its absence is a failure, never a skip:
    the test extra installs it (pip install -e '.[test]')."""
    try:
        import keras as keras_module
    except ImportError as err:  # pragma: no cover - only when the test extra is missing
        pytest.fail(f"Keras is required for the reference tests: pip install -e '.[test]' ({err})")
    if keras_module.backend.backend() != "tensorflow":
        pytest.fail(f"the reference tests need Keras's TensorFlow backend, got {keras_module.backend.backend()}")
    return keras_module


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def engine_float64():
    """The engine in float64 (gradient checks of whole models), float32 again afterwards."""
    import cnn

    cnn.set_floatx("float64")
    try:
        yield
    finally:
        cnn.set_floatx("float32")


@pytest.fixture
def float64(keras, engine_float64):
    """The engine's and Keras's float64 switches, both restored afterwards."""
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield keras
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")

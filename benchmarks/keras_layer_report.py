"""Largest difference from Keras 3, per layer, over a grid of configurations.

    python benchmarks/keras_layer_report.py

Runs the test suite's helper (finite differences in float64, then the Keras
layer with the same weights in float32) on each configuration and prints, per
layer type, the largest absolute difference seen in the forward output and in
any gradient. Needs the test extra.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # the reference kernels, as in tests/conftest.py
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from cnn.layers import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402
from helpers import helper_test_layer  # noqa: E402


def main():
    import keras

    rng = np.random.default_rng(0)
    rows = {}

    def record(name, diffs):
        worst = rows.setdefault(name, {"cases": 0, "forward": 0.0, "gradients": 0.0})
        worst["cases"] += 1
        worst["forward"] = max(worst["forward"], diffs.pop("forward"))
        worst["gradients"] = max([worst["gradients"], *diffs.values()])

    for padding in ("valid", "same"):
        for strides in (1, 2):
            for size in (7, 8, 28):
                for cin, bias in ((1, True), (3, False), (32, True)):
                    x = rng.standard_normal((2, size, size, cin)).astype(np.float32)
                    kwargs = dict(kernel_size=3, strides=strides, padding=padding, use_bias=bias)
                    record("Conv2D", helper_test_layer(Conv2D(8, **kwargs), keras.layers.Conv2D(8, **kwargs), x,
                                                       reduction=9 * cin, fd=size < 10 and cin < 10))
                    if strides == 1:  # the same cases through Winograd F(4x4, 3x3)
                        layer = Conv2D(8, impl="winograd", **kwargs)
                        record("Conv2D (Winograd)", helper_test_layer(layer, keras.layers.Conv2D(8, **kwargs), x,
                                                                      reduction=9 * cin, fd=size < 10 and cin < 10))
            for size in (5, 8, 28):
                x = rng.permutation(2 * size * size * 4).reshape(2, size, size, 4).astype(np.float32) / 100
                kwargs = dict(pool_size=2, strides=strides, padding=padding)
                record("MaxPooling2D", helper_test_layer(MaxPooling2D(**kwargs), keras.layers.MaxPooling2D(**kwargs), x, fd=size < 10))
    for d_in, units, activation in ((12544, 100, "relu"), (100, 10, "softmax"), (7, 3, None)):
        x = rng.standard_normal((4, d_in)).astype(np.float32)
        record("Dense", helper_test_layer(Dense(units, activation=activation), keras.layers.Dense(units, activation=activation),
                                          x, reduction=d_in, fd=d_in < 200 and activation != "relu"))
    x = rng.standard_normal((4, 14, 14, 64)).astype(np.float32)
    record("Flatten", helper_test_layer(Flatten(), keras.layers.Flatten(), x, fd=False))
    record("Dropout (inference)", helper_test_layer(Dropout(0.5), keras.layers.Dropout(0.5), x, fd=False))
    for activation in ("relu", "softmax"):
        record(f"Activation {activation}", helper_test_layer(Activation(activation), keras.layers.Activation(activation),
                                                            x, fd=False))
    print("| layer | cases | largest difference, forward | largest difference, gradients |")
    print("| --- | --- | --- | --- |")
    for name, worst in rows.items():
        print(f"| {name} | {worst['cases']} | {worst['forward']:.2e} | {worst['gradients']:.2e} |")


if __name__ == "__main__":
    main()

"""cnn explain-conv --transpose, --depthwise (with --pointwise) and --groups:
the worked numbers are Keras's layers' outputs and gradients, and a
disagreement with the engine's kernels is reported, not hidden."""
import re

import numpy as np
import pytest

from cnn import explain
from test_cli import cnn


def printed(text, name):
    """{(i, j, k): value} of every 'name[i,j,k] = ... = value' line."""
    cells = {}
    for index, value in re.findall(rf"^  {name}\[([\d,]+)\] = .* = (-?[\d.e+-]+)$", text, re.M):
        cells[tuple(int(v) for v in index.split(","))] = float(value)
    return cells


IMAGE = "1 2 0; 3 4 1 | 0 1 1; 1 0 2"
FILTERS = ["1 0 1; 0 1 0; 1 1 1 | 0 0 1; 1 0 0; 0 2 0", "1 1 1; 0 0 0; 1 1 1 | 1 0 0; 0 1 0; 0 0 1"]


@pytest.mark.parametrize("stride,padding", [(2, "same"), (2, "valid"), (1, "same"), (3, "valid")])
def test_transpose_is_kerass_conv2d_transpose_with_its_gradients(keras, capsys, stride, padding):
    import tensorflow as tf

    image = explain.parse_channels(IMAGE, "--image")
    filters = [explain.parse_channels(f, "--filter") for f in FILTERS]
    rng = np.random.default_rng(0)
    layer = keras.layers.Conv2DTranspose(2, 3, strides=stride, padding=padding, use_bias=False, dtype="float64")
    x = tf.constant(image[None])
    layer.build(x.shape)
    layer.set_weights([np.stack(filters, axis=2)])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        want = layer(x)
        dout = rng.integers(-2, 3, want.shape[1:]).astype(float)
        loss = tf.reduce_sum(want * dout)
    assert explain.explain_transpose(image, filters, stride, padding, backward=True, dout=dout) == 0
    text = capsys.readouterr().out
    assert "This is what the engine's kernels/transpose.py (col2im of x times the kernel) and kernels/conv.py's " \
           "backward pass compute." in text
    rows = text[text.index("Output (each cell"):text.index("The same is")].splitlines()[1:]
    got = np.array([[float(v) for v in row.split()] for row in rows if row.startswith("   ")])
    np.testing.assert_array_equal(got, np.concatenate([want[0, :, :, k] for k in range(2)]))
    dx = printed(text, "dx")
    want_dx = tape.gradient(loss, x).numpy()[0]
    assert dx == {index: want_dx[index] for index in np.ndindex(want_dx.shape)}
    want_dw = tape.gradient(loss, layer.kernel).numpy()
    for k in range(2):
        for c in range(2):
            block = text.split(f"  dW of filter {k}, channel {c}:\n")[1].splitlines()[:3]
            np.testing.assert_array_equal([[float(v) for v in row.split()] for row in block], want_dw[:, :, k, c])


def test_depthwise_and_pointwise_are_kerass_separable_conv2d(keras, capsys):
    image = explain.parse_channels("1 2 0 1; 3 4 1 0; 0 1 2 2 | 0 1 1 3; 1 0 2 1; 2 2 0 1", "--image")
    filters = [explain.parse_channels(f, "--filter") for f in ("1 0; 0 1", "0 1; 1 -1", "2 0; 0 0", "1 1; 1 1")]
    pointwise = explain.parse_matrix("1 2 0; -1 0 1; 0 1 1; 2 0 -1", "--pointwise")
    assert explain.explain_depthwise(image, filters, 1, 1, "same", pointwise) == 0
    text = capsys.readouterr().out
    kernel = np.stack([f[:, :, 0] for f in filters], axis=-1).reshape(2, 2, 2, 2)
    depthwise = keras.layers.DepthwiseConv2D(2, padding="same", depth_multiplier=2, use_bias=False, dtype="float64")
    depthwise.build((1, 3, 4, 2))
    depthwise.set_weights([kernel])
    want = np.asarray(depthwise(image[None]))[0]
    assert printed(text, "out") == {index: want[index] for index in np.ndindex(want.shape)}
    separable = keras.layers.SeparableConv2D(3, 2, padding="same", depth_multiplier=2, use_bias=False,
                                             dtype="float64")
    separable.build((1, 3, 4, 2))
    separable.set_weights([kernel, pointwise.reshape(1, 1, 4, 3)])
    want = np.asarray(separable(image[None]))[0]
    assert printed(text, "y") == {index: want[index] for index in np.ndindex(want.shape)}
    assert "2*2*2*2 + 2*2*3 = 28, where one 2x2 convolution from 2 to 3 channels takes 2*2*2*3 = 24" in text
    assert "This is what the engine's SeparableConv2D layer computes." in text


def test_groups_are_kerass_grouped_conv2d(keras, capsys):
    image = explain.parse_channels("1 2 0; 3 4 1; 0 1 2 | 0 1 1; 1 0 2; 2 2 0 | 1 1 0; 0 0 1; 3 1 2 | "
                                   "2 0 1; 0 1 0; 1 0 1", "--image")
    filters = [explain.parse_channels(f, "--filter") for f in ("1 0; 0 1 | 1 1; 0 0", "0 1; 1 0 | 2 0; 0 1",
                                                               "1 1; 1 1 | 0 0; 1 0", "2 0; 0 0 | 0 1; 0 1")]
    assert explain.explain_groups(image, filters, 2, 1, 1, "1") == 0
    text = capsys.readouterr().out
    layer = keras.layers.Conv2D(4, 2, groups=2, use_bias=False, dtype="float64")
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    layer.build((1, *padded.shape))
    layer.set_weights([np.stack(filters, axis=-1)])
    want = np.asarray(layer(padded[None]))[0]
    assert printed(text, "out") == {index: want[index] for index in np.ndindex(want.shape)}
    assert "filter 2 (group 1, input channels 2-3)" in text and "1/2 of the 2*2*4 = 16" in text


def test_a_disagreement_with_the_engine_is_reported(monkeypatch, capsys):
    import kernels.transpose

    real = kernels.transpose.conv2d_transpose_forward
    monkeypatch.setattr(kernels.transpose, "conv2d_transpose_forward",
                        lambda *a, **k: (real(*a, **k)[0] + 1, real(*a, **k)[1]))
    image, filters = explain.parse_channels("1 2; 3 4", "x"), [explain.parse_channels("1 0; 0 1", "w")]
    assert explain.explain_transpose(image, filters, 2) == 1
    assert "IT DISAGREES" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--transpose", "--depthwise"], "--transpose and --depthwise: give one of them"),
    (["--pointwise", "1; 2"], "--pointwise is the second step of --depthwise"),
    (["--groups", "2", "--backward"], "--backward works out a plain or a --transpose convolution, not --groups"),
    (["--transpose", "--padding", "1"], "--transpose takes --padding 'valid' or 'same'"),
    (["--transpose", "--dilation", "2"], "--dilation is not worked out for a transposed convolution"),
    (["--depthwise", "--image", "1 2; 3 4 | 1 1; 1 1", "--filter", "1 0; 0 1", "--filter", "1 1; 1 1",
      "--filter", "2 2; 2 2"], "give 2 filters (one per channel) or a multiple of 2"),
    (["--groups", "2", "--image", "1 2; 3 4 | 1 1; 1 1", "--filter", "1 0; 0 1 | 1 1; 1 1", "--filter",
      "1 1; 1 1 | 1 1; 1 1"], "each filter reads its group's 1 channel"),
])
def test_what_cannot_be_worked_out_is_refused_by_name(args, message):
    result = cnn("explain-conv", *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_the_command_runs_each_mode():
    result = cnn("explain-conv", "--transpose", "--image", "1 2; 3 4", "--filter", "1 0; 0 1", "--stride", "2")
    assert result.returncode == 0, result.stderr
    assert "  x[1,0] = 3 -> adds 3*W = [3 0; 0 3] at rows 2-3, columns 0-1" in result.stdout
    depthwise = cnn("explain-conv", "--depthwise")  # Figure 5-3's one-channel image: one filter
    assert depthwise.returncode == 0 and "kernels/depthwise.py computes." in depthwise.stdout

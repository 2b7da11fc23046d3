"""What a new user hits first, each as a test: Keras names the engine lacks
refused by name with a way forward, Keras's datasets API, counts beyond the
files refused, a picture's reader chosen by content, one version, files with
the permissions a plain write gives, bad arguments exit 2, and what training
prints into a pipe."""
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn.architectures import small
from cnn.errors import CNNError, DataFileError, InputError, NotInEngineError

ROOT = Path(__file__).resolve().parent.parent


def run(*args, **kwargs):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          **kwargs)


# ---------------------------------------------------------------- names the engine lacks
@pytest.mark.parametrize("module,name,advice", [
    ("cnn", "applications", "nothing is downloaded"),
    ("cnn.layers", "Dot", "Multiply then a sum"),
    ("cnn.layers", "Normalization", "standardize the arrays"),
    ("cnn.layers", "RandomShear", "augment the arrays"),
    ("cnn.layers", "LSTM", "recurrent"),
])
def test_a_keras_name_the_engine_lacks_is_refused_by_name(module, name, advice):
    target = cnn if module == "cnn" else cnn.layers
    with pytest.raises(NotInEngineError, match=f"{module}.{name}: .*{advice}"):
        getattr(target, name)
    with pytest.raises(NotInEngineError, match=f"{module}.{name}: "):  # the way tutorials import it
        exec(f"from {module} import {name}", {})
    assert issubclass(NotInEngineError, CNNError)


def test_other_missing_names_are_plain_attribute_errors():
    assert not hasattr(cnn, "no_such_thing") and not hasattr(cnn.layers, "NoSuchLayer")


def test_a_layer_called_on_input_makes_a_graph():
    tensor = cnn.layers.Conv2D(8, 3)(cnn.Input((28, 28, 1)))
    assert tensor.shape == (None, 26, 26, 8)  # the functional API (tests/test_functional.py)


# ---------------------------------------------------------------- data
def test_datasets_mnist_load_data_returns_what_keras_returns():
    (x_train, y_train), (x_test, y_test) = cnn.datasets.mnist.load_data()
    assert x_train.shape == (4500, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (4500,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.max() == 255 and set(np.unique(y_test)) == set(range(10))
    assert y_train[0] == 5  # MNIST's first training digit


def test_datasets_read_a_named_folder_and_refuse_a_file(tmp_path):
    from cnn.data import write_idx

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 7), ("t10k", 3)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    (x, y), (xt, yt) = cnn.datasets.fashion_mnist.load_data(tmp_path)
    assert x.shape == (7, 28, 28) and yt.shape == (3,)
    with pytest.raises(DataFileError, match="is not a folder .*nothing is downloaded"):
        cnn.datasets.mnist.load_data("mnist.npz")  # Keras's default argument names a download


def test_fashion_mnist_says_how_to_get_it_when_it_is_not_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(cnn.datasets.fashion_mnist, "DEBIAN", tmp_path / "absent")
    with pytest.raises(DataFileError, match="apt-get install dataset-fashion-mnist"):
        cnn.datasets.fashion_mnist.load_data()


def test_a_count_beyond_the_files_is_refused_naming_both():
    with pytest.raises(InputError, match=r"n_train=60000: more train images than .* holds \(4,500\)"):
        cnn.data.load_mnist(n_train=60000)
    with pytest.raises(InputError, match=r"n_test=10001: .*\(10,000\)"):
        cnn.data.load_mnist(n_test=10001)
    (x, _), _ = cnn.data.load_mnist(n_train=4500, n_test=1)
    assert len(x) == 4500
    done = run("-m", "cnn", "train", "--n-train", "5000", "--epochs", "1", "--out", "/tmp/never.npz")
    assert done.returncode == 1 and "--n-train=5000" in done.stderr and "4,500" in done.stderr


def test_a_text_file_named_png_is_said_not_to_be_an_image(tmp_path):
    from cnn.data import load_mnist

    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n")
    model = small()
    model.build((28, 28, 1))
    model.save(tmp_path / "m.npz")
    done = run("-m", "cnn", "predict", tmp_path / "m.npz", tmp_path / "notes.png")
    assert done.returncode == 1 and "notes.png: not an image" in done.stderr, done.stderr
    # a record of the text format under a picture's name is read by its content
    (x, labels), _ = load_mnist(n_train=1, n_test=1)
    from cnn.data import write_text

    write_text(tmp_path / "record.png", np.round(x[:1, :, :, 0] * 255).astype(np.uint8).reshape(1, -1), labels[:1])
    done = run("-m", "cnn", "predict", tmp_path / "m.npz", tmp_path / "record.png")
    assert done.returncode == 0 and "record.png line 1:" in done.stdout, done.stderr


# ---------------------------------------------------------------- small things
def test_one_version_everywhere():
    done = run("-m", "cnn", "--version")
    assert done.stdout.strip() == f"cnn {cnn.__version__}" == f"cnn {importlib.metadata.version('cnn-from-scratch')}"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_have_the_permissions_a_plain_write_gives(tmp_path, umask, mode):
    from cnn.data import write_text
    from cnn.images import write_png

    model = cnn.Sequential([cnn.layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    old = os.umask(umask)
    try:
        model.save(tmp_path / "m.npz")
        model.save(tmp_path / "m.keras")
        write_png(tmp_path / "p.png", np.zeros((4, 4), np.uint8))
        write_text(tmp_path / "t.txt", np.zeros((1, 784), np.uint8), np.zeros(1, np.uint8))
    finally:
        os.umask(old)
    for name in ("m.npz", "m.keras", "p.png", "t.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    (tmp_path / "m.npz").chmod(0o604)  # an existing file keeps its own, as with open(path, "wb")
    model.save(tmp_path / "m.npz")
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o604


@pytest.mark.parametrize("args,message", [
    (["--stride", "0"], "argument --stride: must be a whole number from 1 to 32"),
    (["--dilation", "99"], "argument --dilation"),
    (["--padding", "lots"], "argument --padding: must be 'same', 'valid' or a number"),
])
def test_bad_explain_conv_arguments_exit_2(args, message):
    done = run("-m", "cnn", "explain-conv", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_visualize_says_when_there_are_no_curves(tmp_path):
    model = small()
    model.build((28, 28, 1))
    model.save(tmp_path / "m.npz")
    done = run("-m", "cnn", "visualize", tmp_path / "m.npz", "--out", tmp_path / "pictures", "--n-test", "50")
    assert done.returncode == 0 and "no training curves: " in done.stdout and "m.history.json" in done.stdout


def test_early_stopping_says_it_restored_the_best_weights(capsys):
    model = cnn.Sequential([cnn.layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(loss="categorical_crossentropy", optimizer=cnn.optimizers.SGD(learning_rate=5.0))
    x = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(32) % 2]
    stop = cnn.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True, verbose=1)
    model.fit(x, y, epochs=30, batch_size=32, verbose=0, callbacks=[stop])
    printed = capsys.readouterr().out
    assert f"Restoring model weights from the end of the best epoch: {stop.best_epoch + 1}." in printed


def test_fit_into_a_pipe_prints_one_line_per_epoch_and_no_bar():
    script = ("import numpy as np, cnn\n"
              "m = cnn.Sequential([cnn.layers.Dense(2, activation='softmax', input_shape=(3,))])\n"
              "m.compile(loss='categorical_crossentropy', optimizer='sgd')\n"
              "x = np.ones((64, 3), np.float32); y = np.eye(2, dtype=np.float32)[np.arange(64) % 2]\n"
              "m.fit(x, y, epochs=3, batch_size=8, verbose=1)\n")
    done = run("-c", script)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"], lines
    assert "\r" not in done.stdout + done.stderr and "batch/s" not in done.stderr  # no redrawn bar

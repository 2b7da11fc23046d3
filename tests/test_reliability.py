"""Reliability: checkpoints and exact resume, determinism, divergence, hostile files, memory."""
import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnn
from cnn.callbacks import Callback, EarlyStopping, ModelCheckpoint
from cnn.data import load_mnist, one_hot, read_idx, read_text
from cnn.errors import InputError, CNNError, DataFileError, ModelFileError, TrainingDivergedError
from cnn.saving import load_model

from helpers import small_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data():
    (x, y), (xt, yt) = load_mnist(n_train=200, n_test=100)
    return x, one_hot(y), xt, one_hot(yt)


class Crash(Callback):
    """Simulates a crash right after epoch ``at`` (0-based) has been checkpointed."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer", ["adadelta", "adam", "sgd"])
def test_resumed_training_is_bit_identical(data, tmp_path, optimizer):
    x, y, xt, yt = data
    straight = small_model(5, optimizer)
    straight.fit(x, y, batch_size=32, epochs=4, verbose=0, validation_data=(xt, yt))

    interrupted = small_model(5, optimizer)
    checkpoint = ModelCheckpoint(tmp_path / "ckpt.npz", every=1)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(x, y, batch_size=32, epochs=4, verbose=0, validation_data=(xt, yt),
                        callbacks=[checkpoint, Crash(at=1)])
    resumed = load_model(tmp_path / "ckpt.npz")
    assert resumed.completed_epochs == 2
    resumed.fit(x, y, batch_size=32, epochs=4, verbose=0, validation_data=(xt, yt),
                initial_epoch=resumed.completed_epochs)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 4 * 7


def test_best_only_checkpoint_follows_the_monitored_value(tmp_path):
    saves = []

    class Recorder:
        def save(self, path):
            saves.append(path)

    checkpoint = ModelCheckpoint(tmp_path / "best_{epoch}.npz", monitor="val_loss", save_best_only=True)
    checkpoint.set_model(Recorder())
    for epoch, value in enumerate([1.0, 0.8, 0.9, 0.7, 0.7]):
        checkpoint.on_epoch_end(epoch, {"val_loss": value})
    assert [Path(p).name for p in saves] == ["best_1.npz", "best_2.npz", "best_4.npz"]
    every = ModelCheckpoint(tmp_path / "e_{epoch}.npz", every=2)
    every.set_model(Recorder())
    saves.clear()
    for epoch in range(5):
        every.on_epoch_end(epoch, {})
    assert [Path(p).name for p in saves] == ["e_2.npz", "e_4.npz"]
    with pytest.raises(InputError, match="val_acc"):
        ModelCheckpoint("x", monitor="val_acc", save_best_only=True).on_epoch_end(0, {"loss": 1})


def test_a_crash_inside_a_save_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    model = small_model(1)
    path = tmp_path / "ckpt.npz"
    model.save(path)
    before = path.read_bytes()

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]


def test_early_stopping_on_a_plateau(data):
    stopper = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.01)

    class Holder:
        stop_training = False

    stopper.set_model(Holder())
    stopper.on_train_begin()
    for epoch, value in enumerate([1.0, 0.9, 0.895, 0.899]):
        stopper.on_epoch_end(epoch, {"val_loss": value})
    assert stopper.model.stop_training and stopper.stopped_epoch == 3
    x, y, xt, yt = data
    model = small_model(2)
    history = model.fit(x, y, batch_size=64, epochs=30, verbose=0, validation_data=(xt, yt),
                        callbacks=[EarlyStopping(monitor="loss", patience=1, min_delta=10)])
    assert len(history.epoch) == 2  # no epoch improves by 10: stop after patience runs out


class PoisonAt(cnn.optimizers.Adadelta):
    """An optimizer that writes a NaN into the weights at one step."""

    def __init__(self, step):
        super().__init__(learning_rate=1.0)
        self.poison_step = step

    def get_config(self):  # saved as the plain Adadelta it is otherwise
        config = super().get_config()
        del config["poison_step"]
        return {**config, "name": "Adadelta"}

    def step(self, layers):
        super().step(layers)
        if self.iterations == self.poison_step:
            layers[-1].params["kernel"][0, 0] = np.nan


def test_divergence_stops_with_epoch_and_batch_and_keeps_the_checkpoint(data, tmp_path):
    x, y, *_ = data
    model = small_model(3, optimizer=PoisonAt(step=7 + 3))  # 7 batches an epoch: epoch 1, batch 2
    path = tmp_path / "ckpt.npz"
    with pytest.raises(TrainingDivergedError, match=r"layer 'dense_1' kernel holds NaN or Inf at epoch 1, batch 2"):
        model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[ModelCheckpoint(path)])
    good = load_model(path)
    assert good.completed_epochs == 1
    assert all(np.isfinite(w).all() for w in good.get_weights())


DETERMINISM_SCRIPT = """
import hashlib, sys
import numpy as np
import cnn
from cnn.data import load_mnist, one_hot
from tests.helpers import small_model
(x, y), _ = load_mnist(n_train=128, n_test=1)
model = small_model(int(sys.argv[1]))
model.fit(x, one_hot(y), batch_size=32, epochs=2, verbose=0)
print(hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
"""


def test_same_seed_gives_bit_identical_weights_in_separate_processes():
    def run(seed):
        result = subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT, str(seed)], cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    first, second, other = run(11), run(11), run(12)
    assert first == second
    assert first != other


def test_memory_stays_flat_across_epochs(data):
    def resident_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    x, y, xt, yt = data
    model = small_model(4)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, validation_data=(xt, yt))
    after_first = resident_bytes()
    model.fit(x, y, batch_size=32, epochs=12, verbose=0, validation_data=(xt, yt), initial_epoch=2)
    after_last = resident_bytes()
    assert after_last - after_first < 8 * 2**20, (after_first, after_last)


# ------------------------------------------------------------ hostile files
# Every reader must answer random or damaged bytes with the engine's own error
# (or, for damage that leaves a valid file, a result); never another
# exception, never an allocation the file cannot justify.

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_idx_bytes():
    buffer = io.BytesIO()
    images = np.random.default_rng(0).integers(0, 256, (6, 5, 4)).astype(np.uint8)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    buffer.write(header + images.tobytes())
    return buffer.getvalue()


def damage(original, data):
    """A truncation, some flipped bytes, or both, drawn by hypothesis."""
    raw = bytearray(original)
    for _ in range(data.draw(st.integers(0, 4), label="flips")):
        where = data.draw(st.integers(0, len(raw) - 1), label="where")
        raw[where] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    return bytes(raw[:cut]) if data.draw(st.booleans(), label="truncate") else bytes(raw)


@FUZZ
@given(data=st.data(), gzipped=st.booleans())
def test_fuzz_idx_reader(tmp_path, data, gzipped):
    content = damage(_valid_idx_bytes(), data)
    if gzipped:
        content = data.draw(st.sampled_from([gzip.compress(content), damage(gzip.compress(content), data)]))
    path = tmp_path / "fuzz.idx"
    path.write_bytes(content)
    try:
        array = read_idx(path)
    except DataFileError:
        return
    assert array.size * array.itemsize <= max(len(content), 1) * 1100


@FUZZ
@given(content=st.binary(max_size=300))
def test_fuzz_idx_reader_random_bytes(tmp_path, content):
    path = tmp_path / "random.idx"
    path.write_bytes(content)
    try:
        read_idx(path)
    except DataFileError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.text(max_size=40),
    st.lists(st.integers(-5, 300), min_size=784, max_size=784).map(lambda p: "3 ** " + " ".join(map(str, p))),
    st.integers(-10**30, 10**30).map(lambda v: f"{v} ** " + " ".join(["1"] * 784)),
), max_size=4))
def test_fuzz_text_reader(tmp_path, lines):
    path = tmp_path / "fuzz.txt"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass") if all(
        not any(0xD800 <= ord(c) <= 0xDFFF for c in line) for line in lines) else path.write_bytes(b"\xff")
    try:
        images, labels = read_text(path)
    except DataFileError:
        return
    assert images.shape[1] == 784 and labels.max() < 10


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    model = small_model(9, optimizer="adam")
    (x, y), _ = load_mnist(n_train=32, n_test=1)
    model.fit(x, one_hot(y), batch_size=32, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("m") / "m.npz"
    model.save(path)
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzz_model_loader(tmp_path, model_bytes, data):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(damage(model_bytes, data))
    try:
        load_model(path)
    except ModelFileError:
        pass


def _rewrite_config(model_bytes, change):
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(np.load(io.BytesIO(members["config.npy"])).tobytes())
    change(config)
    out = io.BytesIO()
    arrays = {n[:-4]: np.load(io.BytesIO(b)) for n, b in members.items()}
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), np.uint8)
    np.savez(out, **arrays)
    return out.getvalue()


@pytest.mark.parametrize("change,message", [
    (lambda c: c["layers"][0].update(class_name="LSTM"), "unknown layer type 'LSTM'"),
    (lambda c: c["layers"][0]["config"].update(filters=-3), "architecture is invalid"),
    (lambda c: c["layers"][0]["config"].update(evil="__import__('os')"), "architecture is invalid"),
    (lambda c: c["compile"]["optimizer"].update(name="Nadam"), "architecture is invalid"),
    (lambda c: c.update(version=99), "format version 99"),
    (lambda c: c["training"]["generators"].update(model={"bit_generator": "MT19937"}), "generator state"),
    (lambda c: c["training"].update(optimizer_slots=["optimizer/9/kernel/m"]), "belongs to no parameter"),
])
def test_hostile_model_configs_are_refused(tmp_path, model_bytes, change, message):
    path = tmp_path / "hostile.npz"
    path.write_bytes(_rewrite_config(model_bytes, change))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_a_decompression_bomb_is_refused_before_reading(tmp_path, model_bytes):
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            if name == "layer_4/kernel.npy":  # header says (784, 16) float32, then 200 MB of zeros
                content = content + bytes(200 * 2**20)
            z.writestr(name, content)
    path = tmp_path / "bomb.npz"
    path.write_bytes(out.getvalue())
    assert path.stat().st_size < 2 * 2**20
    with pytest.raises(ModelFileError, match=r"holds 2097\d* bytes"):
        load_model(path)


def test_engine_errors_share_one_base_class():
    for error in (DataFileError, ModelFileError, TrainingDivergedError, cnn.InputError):
        assert issubclass(error, CNNError)


@pytest.mark.parametrize("input_shape", [[2**15, 2**15, 1], [2**31, 2**31, 1], [0, 28, 1]])
def test_an_architecture_larger_than_its_file_is_refused_before_allocating(tmp_path, model_bytes, input_shape):
    path = tmp_path / "huge.npz"
    path.write_bytes(_rewrite_config(model_bytes, lambda c: c.update(input_shape=input_shape)))
    with pytest.raises(ModelFileError, match="needs \\d+ bytes of weights|invalid"):
        load_model(path)

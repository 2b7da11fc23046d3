"""Hostile files and calls: every reader refuses what is not its own data,
before allocating what a file merely claims; saves survive threads and kills;
the command line answers bad input with one line, never a traceback.

Memory: the checks that a reader does not allocate what a file claims run
under a real cap (``memory_cap``: the process's address space limited to what
it uses now plus a margin, with RLIMIT_AS), so an allocation before checking
fails the test with MemoryError instead of passing slowly.
"""
import contextlib
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnn
from cnn.data import read_idx, read_text, write_idx, write_text
from cnn.errors import CNNError, DataFileError, InputError, ModelFileError
from cnn.images import read_gray, write_png
from cnn.saving import load_model
from cnn.keras_io import load_keras_model, load_keras_weights, save_keras

from helpers import small_model

ROOT = Path(__file__).resolve().parent.parent
FUZZ_EXAMPLES = 60  # per reader, in CI on every run


def _vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


@contextlib.contextmanager
def memory_cap(margin=384 << 20):
    """Limit the address space to what the process maps now plus ``margin``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + margin, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def refused(reader, *args, error=CNNError, match=None):
    """``reader(*args)`` under the memory cap raises the engine's ``error``."""
    with memory_cap():
        with pytest.raises(error, match=match) as caught:
            reader(*args)
    return caught.value


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model = small_model()
    model.fit(np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32),
              np.eye(10, dtype=np.float32)[np.arange(32) % 10], epochs=1, verbose=0)
    model.save(folder / "m.npz")
    save_keras(model, folder / "m.keras")
    save_keras(model, folder / "m.weights.h5")
    return model, folder


# ---------------------------------------------------------------- HDF5 reads only its own bytes
def _rewrite_dataset(source, target, key, make):
    """Copy a .weights.h5 file and replace dataset ``key`` by ``make(file, key, data)``."""
    import h5py

    target.write_bytes(source.read_bytes())
    with h5py.File(target, "r+") as f:
        data = f[key][()]
        del f[key]
        make(f, key, data)


def test_external_storage_pointing_elsewhere_is_refused(model_files, tmp_path):
    model, folder = model_files
    secret = tmp_path / "secret.bin"
    key = "layers/dense/vars/0"
    shape = model.layers[4].params["kernel"].shape
    secret.write_bytes(b"password" * (int(np.prod(shape)) * 4 // 8 + 1))  # enough bytes to fill the kernel
    bad = tmp_path / "external.weights.h5"
    _rewrite_dataset(folder / "m.weights.h5", bad, key,
                     lambda f, k, data: f.create_dataset(k, shape=data.shape, dtype=data.dtype,
                                                         external=[(str(secret), 0, data.nbytes)]))
    before = model.get_weights()
    with pytest.raises(ModelFileError, match="external file; refused"):
        load_keras_weights(model, bad)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # nothing changed


@pytest.mark.parametrize("kind", ["external_link", "soft_link", "virtual"])
def test_links_and_virtual_datasets_are_refused(model_files, tmp_path, kind):
    import h5py

    model, folder = model_files
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = model.layers[4].params["kernel"]
    key = "layers/dense/vars/0"

    def make(f, k, data):
        if kind == "external_link":
            f[k] = h5py.ExternalLink(str(other), "data")
        elif kind == "soft_link":
            f["elsewhere"] = data
            f[k] = h5py.SoftLink("/elsewhere")
        else:
            layout = h5py.VirtualLayout(shape=data.shape, dtype=data.dtype)
            layout[...] = h5py.VirtualSource(str(other), "data", shape=data.shape)
            f.create_virtual_dataset(k, layout)

    bad = tmp_path / f"{kind}.weights.h5"
    _rewrite_dataset(folder / "m.weights.h5", bad, key, make)
    with pytest.raises(ModelFileError, match="ExternalLink|SoftLink|virtual dataset"):
        load_keras_weights(model, bad)


def test_a_keras_file_holding_such_weights_is_refused_too(model_files, tmp_path):
    model, folder = model_files
    bad_weights = tmp_path / "soft.weights.h5"
    import h5py

    _rewrite_dataset(folder / "m.weights.h5", bad_weights, "layers/dense/vars/1",
                     lambda f, k, data: (f.__setitem__("x", data), f.__setitem__(k, h5py.SoftLink("/x"))))
    bad = tmp_path / "soft.keras"
    with zipfile.ZipFile(folder / "m.keras") as good, zipfile.ZipFile(bad, "w") as out:
        for name in good.namelist():
            out.writestr(name, bad_weights.read_bytes() if name == "model.weights.h5" else good.read(name))
    with pytest.raises(ModelFileError, match="SoftLink"):
        load_keras_model(bad)
    with pytest.raises(ModelFileError, match="SoftLink"):
        cnn.load_model(bad)


@pytest.mark.parametrize("dtype,shape", [(np.int32, None), (np.float32, (5, 5))])
def test_datasets_of_another_type_or_shape_are_refused(model_files, tmp_path, dtype, shape):
    model, folder = model_files
    bad = tmp_path / "typed.weights.h5"
    _rewrite_dataset(folder / "m.weights.h5", bad, "layers/dense/vars/1",
                     lambda f, k, data: f.create_dataset(k, data=np.zeros(shape or data.shape, dtype)))
    with pytest.raises(ModelFileError, match="should be"):
        load_keras_weights(model, bad)


def test_a_huge_dataset_is_refused_from_its_header(model_files, tmp_path):
    # a 1.25 GB dataset in a small file (chunked, never written): refused before any read
    model, folder = model_files
    bad = tmp_path / "huge.weights.h5"
    _rewrite_dataset(folder / "m.weights.h5", bad, "layers/dense/vars/0",
                     lambda f, k, data: f.create_dataset(k, shape=(20000, 16000), dtype=np.float32, chunks=(100, 100)))
    assert bad.stat().st_size < 1 << 20
    refused(load_keras_weights, model, bad, error=ModelFileError, match="should be")


# ---------------------------------------------------------------- not a regular file
def test_a_fifo_and_a_device_are_refused_before_reading(tmp_path, model_files):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.npz"
    zero.symlink_to("/dev/zero")
    for reader in (load_model, lambda p: read_idx(p), lambda p: read_text(p), read_gray):
        for path in (fifo, zero):
            with pytest.raises(CNNError, match="FIFO|device"):
                reader(path)
    result = subprocess.run([sys.executable, "-m", "cnn", "predict", str(model_files[1] / "m.npz"), str(fifo)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "FIFO" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- nothing allocated before it is checked
def _npz(path, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def _config(model):
    from cnn.io import model_config  # the .npz format's description

    return np.frombuffer(json.dumps(model_config(model)).encode(), np.uint8)


def test_a_small_file_claiming_a_huge_model_is_refused_before_building(tmp_path):
    small = cnn.Sequential([cnn.Input((784,)), cnn.layers.Dense(1)])
    spec = json.loads(_config(small).tobytes())
    spec["layers"][0]["config"]["units"] = 100000
    path = tmp_path / "claims.npz"
    _npz(path, {"config": np.frombuffer(json.dumps(spec).encode(), np.uint8),
                "layer_0/kernel": np.zeros((784, 1), np.float32), "layer_0/bias": np.zeros(1, np.float32)})
    assert path.stat().st_size < 40_000
    refused(load_model, path, error=ModelFileError, match="needs 314000000 bytes of weights")


def _claim_zip64_size(data, size):
    """The zip with its first central-directory entry claiming ``size``
    uncompressed bytes through a zip64 extra field."""
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, at + 28)
    struct.pack_into("<I", data, at + 24, 0xFFFFFFFF)  # "see the zip64 field"
    extra = struct.pack("<HHQ", 1, 8, size)
    insert_at = at + 46 + name_length + extra_length
    data[insert_at:insert_at] = extra
    struct.pack_into("<H", data, at + 30, extra_length + len(extra))
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, = struct.unpack_from("<I", data, eocd + 12)
    struct.pack_into("<I", data, eocd + 12, cd_size + len(extra))
    return bytes(data)


def test_a_zip64_entry_claiming_a_terabyte_is_refused(tmp_path, model_files):
    path = tmp_path / "zip64.npz"
    path.write_bytes(_claim_zip64_size((model_files[1] / "m.npz").read_bytes(), 1 << 40))
    with zipfile.ZipFile(path) as z:
        assert z.infolist()[0].file_size == 1 << 40  # Python's zipfile believes it
    refused(load_model, path, error=ModelFileError, match="claims 1099511627776 bytes")


def test_an_npy_header_claiming_more_than_its_member_is_refused(tmp_path, model_files):
    raw = bytearray((model_files[1] / "m.npz").read_bytes())
    target = b"'shape': (784, 16)"
    at = raw.find(target)
    assert at > 0
    raw[at:at + len(target)] = b"'shape': (784, 99)"  # same length: the header lies, the data does not follow
    path = tmp_path / "header.npz"
    path.write_bytes(bytes(raw))
    refused(load_model, path, error=ModelFileError, match="should be float32 \\(784, 16\\)")
    raw[at:at + len(target)] = b"'shape': (99999999,"[:len(target)]
    path.write_bytes(bytes(raw))
    refused(load_model, path, error=ModelFileError)


@pytest.mark.parametrize("width,height", [(0, 10), (10, 0), (2**32 - 1, 2**32 - 1), (65535, 65535)])
def test_png_headers_with_absurd_sizes_are_refused(tmp_path, width, height):
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    path = tmp_path / "absurd.png"
    path.write_bytes(png)
    refused(read_gray, path, error=DataFileError)


def test_a_truncated_png_is_refused(tmp_path):
    write_png(tmp_path / "ok.png", np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    refused(read_gray, tmp_path / "cut.png", error=DataFileError, match="corrupt or truncated|not an image")


def test_a_60_mb_line_is_refused_without_being_split(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"5 ** " + b"1 " * 30_000_000 + b"\n")
    refused(read_text, path, error=DataFileError, match="longer than 65536 bytes")


def test_negative_record_counts_are_refused(tmp_path):
    write_idx(tmp_path / "x.idx", np.zeros((3, 2, 2), np.uint8))
    with pytest.raises(InputError, match="max_records must be an int >= 0"):
        read_idx(tmp_path / "x.idx", -1)
    write_text(tmp_path / "t.txt", np.zeros((2, 784), np.uint8), np.array([1, 2]))
    with pytest.raises(InputError, match="max_records"):
        read_text(tmp_path / "t.txt", max_records=-3)
    assert read_text(tmp_path / "t.txt", max_records=1)[0].shape == (1, 784)


def test_evaluate_decodes_only_the_test_split(tmp_path, model_files):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes((ROOT / "data" / name).read_bytes())
    (folder / "train-images-idx3-ubyte").write_bytes(b"not even IDX")  # never read
    (folder / "train-labels-idx1-ubyte").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "cnn", "evaluate", str(model_files[1] / "m.npz"), "--data",
                             str(folder), "--n-test", "10"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("10 test images")


# ---------------------------------------------------------------- bounded work
def test_a_file_listing_25000_layers_is_refused_by_its_count(tmp_path):
    spec = json.loads(_config(cnn.Sequential([cnn.Input((4,)), cnn.layers.Flatten()])).tobytes())
    spec["layers"] = [{"class_name": "Flatten", "config": {}}] * 25_000
    path = tmp_path / "many.npz"
    _npz(path, {"config": np.frombuffer(json.dumps(spec).encode(), np.uint8)})
    refused(load_model, path, error=ModelFileError, match="at most 10000 layers")


def test_default_names_stay_keras_names_and_are_counted_not_searched():
    model = cnn.Sequential([cnn.Input((4,))] + [cnn.layers.Activation("linear") for _ in range(3000)])
    assert model.layers[0].name == "activation" and model.layers[-1].name == "activation_2999"
    assert model._name_counts == {"activation": 3000}


@pytest.mark.parametrize("config", [
    "[" * 100_000 + "]" * 100_000,                            # deep nesting: no RecursionError
    json.dumps({"class_name": "Sequential", "config": {"layers": "dense"}}),
    json.dumps({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense"}]}}),
    json.dumps({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": "x"}}]}}),
    json.dumps({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 3}}]}}),
    '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dropout", "config": {"rate": NaN}}]}}',
    json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": "no"}}]}}),
    json.dumps([1, 2, 3]),
])
def test_malformed_keras_configs_are_refused_in_our_words(model_files, tmp_path, config):
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(model_files[1] / "m.keras") as good, zipfile.ZipFile(bad, "w") as out:
        for name in good.namelist():
            out.writestr(name, config if name == "config.json" else good.read(name))
    refused(load_keras_model, bad, error=ModelFileError)


# ---------------------------------------------------------------- saves that survive threads and kills
def test_concurrent_saves_to_one_path_each_end_whole(tmp_path):
    model = small_model()
    path = tmp_path / "shared.npz"
    errors = []

    def save(rounds=6):
        try:
            for _ in range(rounds):
                model.save(path)
        except Exception as err:  # noqa: BLE001 - any failure is the test's failure
            errors.append(err)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    np.testing.assert_array_equal(load_model(path).get_weights()[0], model.get_weights()[0])
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npz"]  # no temporary left behind


SAVER = """
import sys, numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from helpers import small_model
model = small_model()
print("ready", flush=True)
while True:
    model.save({path!r})
"""


def test_a_process_killed_mid_save_leaves_the_last_file_whole(tmp_path):
    path = tmp_path / "killed.npz"
    rng = np.random.default_rng(7)
    for round_ in range(8):
        child = subprocess.Popen([sys.executable, "-c", SAVER.format(root=str(ROOT), tests=str(ROOT / "tests"),
                                                                     path=str(path))],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.6)))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if path.exists():
            load_model(path)  # whole, whichever save finished last
    small_model().save(path)  # the next save removes what killed saves abandoned
    assert [p.name for p in tmp_path.iterdir()] == ["killed.npz"]


# ---------------------------------------------------------------- the command line: one line, exit 1
def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "cnn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("out", ["", "data"])
def test_train_refuses_a_bad_out_before_training(out):
    result = cli("train", "--arch", "small", "--epochs", "1", "--out", out)
    assert result.returncode == 1 and "Epoch" not in result.stdout and "--out" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_model_with_more_than_ten_outputs_predicts_and_draws(tmp_path):
    cnn.set_seed(0)
    model = cnn.Sequential([cnn.Input((28, 28, 1)), cnn.layers.Flatten(), cnn.layers.Dense(12, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "twelve.npz")
    write_idx(tmp_path / "x.idx", np.zeros((2, 28, 28), np.uint8))
    result = cli("predict", tmp_path / "twelve.npz", f"{tmp_path / 'x.idx'}:1")
    assert result.returncode == 0, result.stderr
    result = cli("visualize", tmp_path / "twelve.npz", "--out", tmp_path / "pics")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", ["wrong_size_record", "odd_index", "unicode_index", "history", "padding", "nan",
                                  "label", "wrong_model"])
def test_bad_command_line_input_is_one_line(tmp_path, model_files, case):
    model = model_files[1] / "m.npz"
    write_idx(tmp_path / "big.idx", np.zeros((2, 32, 32), np.uint8))
    args = {
        "wrong_size_record": ("predict", model, f"{tmp_path / 'big.idx'}:0"),
        "odd_index": ("predict", model, f"{tmp_path / 'big.idx'}:-1"),
        "unicode_index": ("predict", model, f"{tmp_path / 'big.idx'}:\u0661"),
        "history": ("visualize", model, "--out", tmp_path / "p", "--history", tmp_path / "h.json"),
        "padding": ("explain-conv", "--padding", "999999999"),
        "nan": ("explain-conv", "--image", "1 nan; 2 3"),
        "label": ("show", "--data", tmp_path / "labels"),
        "wrong_model": ("predict", tmp_path / "rgb.npz", f"{tmp_path / 'big.idx'}:0"),
    }[case]
    (tmp_path / "h.json").write_text('{"loss": [1, "two"]}')
    labels = tmp_path / "labels"
    labels.mkdir()
    write_idx(labels / "train-images-idx3-ubyte", np.zeros((1, 28, 28), np.uint8))
    write_idx(labels / "train-labels-idx1-ubyte", np.array([12], np.uint8))
    cnn.Sequential([cnn.Input((8, 8, 3)), cnn.layers.Flatten(), cnn.layers.Dense(2)]).save(tmp_path / "rgb.npz")
    result = cli(*args)
    if case == "label":  # a label beyond the digits' names is shown, not a crash
        assert result.returncode == 0 and "label 12 (class 12)" in result.stdout, result.stderr
        return
    if case == "padding":  # a bad argument: argparse's usage and one error line, exit 2
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "argument --padding: must be" in result.stderr.strip().splitlines()[-1]
        return
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr


def test_an_unknown_placeholder_in_a_checkpoint_name_is_named(tmp_path):
    model = small_model()
    x = np.zeros((4, 28, 28, 1), np.float32)
    y = np.eye(10, dtype=np.float32)[:4]
    with pytest.raises(InputError, match="cannot fill in the file name"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cnn.callbacks.ModelCheckpoint(str(tmp_path / "m-{nope}.npz"))])


# ---------------------------------------------------------------- fuzzing every reader under the cap
def _mutations():
    return st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "zero"]), st.integers(0, 2**31 - 1),
                              st.integers(0, 255)), min_size=1, max_size=4)


def _mutate(data, mutations):
    data = bytearray(data)
    for kind, where, value in mutations:
        if not data:
            break
        at = where % len(data)
        if kind == "flip":
            data[at] ^= value or 1
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value]) * (1 + value % 7)
        else:
            data[at:at + 8] = b"\xff" * 8 if value % 2 else b"\x00" * 8
    return bytes(data)


def _fuzz(reader, good, tmp_path, name, mutations):
    path = tmp_path / name
    path.write_bytes(_mutate(good, mutations))
    with memory_cap():
        try:
            reader(path)
        except CNNError:
            pass  # refused in the engine's words: what a damaged file should get


FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def good_files(model_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    write_png(folder / "d.png", (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28))
    write_idx(folder / "i.idx", np.arange(5 * 28 * 28, dtype=np.uint32).reshape(5, 28, 28).astype(np.uint8))
    write_idx(folder / "i.idx.gz", np.arange(5 * 28 * 28, dtype=np.uint32).reshape(5, 28, 28).astype(np.uint8))
    write_text(folder / "t.txt", np.arange(2 * 784).reshape(2, 784) % 256, np.array([3, 4]))
    return {name: path.read_bytes() for name, path in {
        "npz": model_files[1] / "m.npz", "keras": model_files[1] / "m.keras", "h5": model_files[1] / "m.weights.h5",
        "png": folder / "d.png", "idx": folder / "i.idx", "idx.gz": folder / "i.idx.gz", "txt": folder / "t.txt",
    }.items()}


@FUZZ
@given(mutations=_mutations())
def test_fuzz_model_npz(good_files, tmp_path_factory, mutations):
    _fuzz(load_model, good_files["npz"], tmp_path_factory.getbasetemp(), "f.npz", mutations)


@FUZZ
@given(mutations=_mutations())
def test_fuzz_keras_file(good_files, tmp_path_factory, mutations):
    _fuzz(load_keras_model, good_files["keras"], tmp_path_factory.getbasetemp(), "f.keras", mutations)


@FUZZ
@given(mutations=_mutations())
def test_fuzz_weights_h5(good_files, model_files, tmp_path_factory, mutations):
    model = small_model()
    _fuzz(lambda p: load_keras_weights(model, p), good_files["h5"], tmp_path_factory.getbasetemp(), "f.weights.h5",
          mutations)


@FUZZ
@given(mutations=_mutations())
def test_fuzz_image(good_files, tmp_path_factory, mutations):
    _fuzz(read_gray, good_files["png"], tmp_path_factory.getbasetemp(), "f.png", mutations)


@FUZZ
@given(mutations=_mutations(), gzipped=st.booleans())
def test_fuzz_idx(good_files, tmp_path_factory, mutations, gzipped):
    _fuzz(read_idx, good_files["idx.gz" if gzipped else "idx"], tmp_path_factory.getbasetemp(), "f.idx", mutations)


@FUZZ
@given(mutations=_mutations())
def test_fuzz_text(good_files, tmp_path_factory, mutations):
    _fuzz(read_text, good_files["txt"], tmp_path_factory.getbasetemp(), "f.txt", mutations)

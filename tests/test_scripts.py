"""The chapter's scripts, run as a user runs them."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from cnn.data import read_text
from cnn.images import write_png
from cnn.saving import load_model
from scripts.mnist_cnn import LABELS, made_up_digit

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def read_png(path):
    """Decode a grayscale PNG (Pillow, the engine's image library)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        return np.asarray(image)


def test_preprocess_writes_the_chapter_text_format(tmp_path):
    out = tmp_path / "train_20.txt"
    result = run("scripts/preprocess.py", "data/train-4500-images-idx3-ubyte.gz",
                 "data/train-4500-labels-idx1-ubyte.gz", out, "--count", "20")
    assert result.returncode == 0, result.stderr
    assert "wrote 20 records" in result.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 20 and lines[0].startswith("5 ** 0 0 0")
    images, labels = read_text(out)
    assert images.shape == (20, 784) and labels[:4].tolist() == [5, 0, 4, 1]


def test_preprocess_reports_bad_input_in_one_line(tmp_path):
    result = run("scripts/preprocess.py", "data/SHA256SUMS", "data/SHA256SUMS", tmp_path / "x.txt")
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "not an IDX file" in result.stderr
    result = run("scripts/preprocess.py", "data/t10k-images-idx3-ubyte.gz", "data/t10k-labels-idx1-ubyte.gz",
                 tmp_path / "x.txt", "--count", "20000")
    assert result.returncode == 1 and "only 10000 records" in result.stderr
    assert not (tmp_path / "x.txt").exists()


def test_made_up_digit_is_the_chapters():
    image = made_up_digit()
    stroke = [image[row, 9] for row in range(5, 23) if row != 9]  # (9, 9) belongs to the diagonal too
    assert stroke == [180] * 17 and image[4, 9] == 0 and image[23, 9] == 0
    assert all(image[rc, rc] == 250 for rc in range(9, 19))
    assert np.count_nonzero(image) == 18 + 10 - 1  # (9, 9) is on both strokes
    assert len(LABELS) == 10 and LABELS[6] == "six" and LABELS[7] == "seven"


def test_png_writer_round_trip(tmp_path):
    image = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    write_png(tmp_path / "a.png", image, scale=2)
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), np.repeat(np.repeat(image, 2, 0), 2, 1))


def test_chapter_program_end_to_end(tmp_path):
    """The whole program with the chapter's settings: 1,000 images, 50 epochs, batch 128.

    The chapter reports 98% on its 100 test images; this engine measured
    97-99% over seeds (see the README). The bound below leaves room for the
    variation of one seed against another, not for a broken engine: an
    untrained model scores about 10%.
    """
    result = run("scripts/mnist_cnn.py", "--out", tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    epochs = re.findall(r"^epoch = +(\d+) loss = (\d\.\d{4}) accuracy = (\d+\.\d\d)%$", out, re.M)
    assert [int(e[0]) for e in epochs] == [0, 10, 20, 30, 40, 49]  # and the final epoch's line
    assert "Training complete" in out and "Total params: 1,274,326" in out
    test_acc = float(re.search(r"^Test data loss = \d+\.\d{4} accuracy = (\d+\.\d\d)%$", out, re.M).group(1))
    full_acc = float(re.search(r"^Full test set \(10,000 images\): .* accuracy = (\d+\.\d\d)%$", out, re.M).group(1))
    assert test_acc >= 95.0, out
    assert full_acc >= 92.0, out
    probs = re.search(r"^Probabilities: \[(.*)\]$", out, re.M).group(1).split()
    assert len(probs) == 10 and abs(sum(map(float, probs)) - 1) < 1e-3
    assert re.search(r"^Predicted digit: (\w+) \(", out, re.M).group(1) in LABELS
    model = load_model(tmp_path / "mnist_model.npz")
    assert model.count_params() == 1274326
    picture = read_png(tmp_path / "made_up_digit.png")
    assert picture.shape[0] > 224 and picture.shape[1] >= 224  # the digit, and its caption below
    digit = picture[:224, (picture.shape[1] - 224) // 2:][:, :224]
    assert digit.min() < 100 and digit.max() == 255
    assert len((tmp_path / "mnist_train_1000.txt").read_text().splitlines()) == 1000

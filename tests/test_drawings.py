"""Drawings that are not MNIST (tests/make_drawings.py: several sizes, pen
thicknesses and positions; white, black and transparent pages; PNG and JPEG)
are read the way MNIST's digits were made and predicted right by the
chapter's model."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn.chapter import build_model
from cnn.data import load_mnist, one_hot
from cnn.images import read_digit

from make_drawings import make

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def chapter_model(tmp_path_factory):
    """The chapter's model trained as the chapter trains it (1,000 images, 50 epochs, seed 2)."""
    cnn.set_seed(2)
    (x, y), _ = load_mnist(n_train=1000, n_test=1)
    model = build_model()
    model.fit(x, one_hot(y), batch_size=128, epochs=50, verbose=0)
    path = tmp_path_factory.mktemp("chapter") / "chapter.npz"
    model.save(path)
    return model, path


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    return make(tmp_path_factory.mktemp("drawings"))


def test_drawings_are_predicted_right(chapter_model, drawings):
    model, _ = chapter_model
    right = []
    for path, digit in drawings:
        image, notes = read_digit(path)
        assert image.shape == (28, 28) and image.dtype == np.uint8
        probs = model.predict((image / 255.0).astype(np.float32).reshape(1, 28, 28, 1))[0]
        right.append(int(probs.argmax()) == digit)
    assert sum(right) >= 9, [str(p.name) for (p, _), ok in zip(drawings, right) if not ok]


def test_the_preparation_makes_mnist_like_images(drawings):
    for path, _ in drawings:
        image, notes = read_digit(path)
        ink = image > 128
        rows, cols = np.nonzero(image > 25)
        assert max(np.ptp(rows), np.ptp(cols)) <= 21  # the longest side scaled to 20 pixels
        total = image.sum()
        cy = (image.sum(axis=1) * np.arange(28)).sum() / total
        cx = (image.sum(axis=0) * np.arange(28)).sum() / total
        assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1  # centre of mass in the middle
        assert 0.05 < ink.mean() < 0.4  # strokes of MNIST's weight, not hairlines
        assert any("centred by its centre of mass" in n for n in notes)


def test_transparent_and_dark_pages_are_read_as_ink(drawings):
    pages = {p.name.split("_")[3]: read_digit(p)[1] for p, _ in drawings}
    assert any("transparent background" in n for n in pages["transparent"])
    assert any("light background: inverted" in n for n in pages["white"])
    assert not any("inverted" in n for n in pages["dark"])


def test_an_empty_picture_is_warned_about(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64), (255, 255, 255)).save(tmp_path / "blank.png")
    image, notes = read_digit(tmp_path / "blank.png")
    assert not image.any() and any("no digit found" in n for n in notes)


def test_predict_shows_what_the_model_saw(chapter_model, drawings, tmp_path):
    _, model_path = chapter_model
    path, digit = drawings[7]  # the "7" that fills its 280x280 canvas
    result = subprocess.run([sys.executable, "-m", "cnn", "predict", str(model_path), str(path),
                             "--show-input", str(tmp_path / "seen.png")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f": {digit} (seven) with probability" in result.stdout
    from cnn.images import read_gray

    seen = read_gray(tmp_path / "seen.png")
    assert seen.shape == (28 * 8, 28 * 8)

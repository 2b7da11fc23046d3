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


def test_an_empty_picture_is_refused_not_predicted_from(tmp_path):
    from PIL import Image
    from cnn.errors import DataFileError

    for name, picture in [("white.png", Image.new("RGB", (64, 64), (255, 255, 255))),
                          ("black28.png", Image.new("L", (28, 28), 0)),
                          ("gray.png", Image.new("L", (50, 40), 128))]:
        picture.save(tmp_path / name)
        with pytest.raises(DataFileError, match=f"{name}: the picture is empty"):
            read_digit(tmp_path / name)


def test_a_huge_blank_png_is_read_small_and_said_to_be_empty(tmp_path):
    """66 KB of PNG for 8176x8176 blank pixels: read in a bounded budget (the
    decoded bits, 67 MB; then a megapixel), and refused as empty, in a child
    process whose peak memory is measured."""
    import subprocess
    import sys

    from PIL import Image

    Image.new("1", (8176, 8176), 1).save(tmp_path / "blank.png")
    assert (tmp_path / "blank.png").stat().st_size < 100_000
    script = ("import resource, sys; from cnn.images import read_digit\n"
              "import numpy\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "try:\n    read_digit(sys.argv[1])\nexcept Exception as err:\n    print(type(err).__name__, err)\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "blank.png")], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    said, grown_kb = done.stdout.strip().rsplit("\n", 1)
    assert "DataFileError" in said and "the picture is empty" in said, done
    assert int(grown_kb) < 256 * 1024, f"reading it took {int(grown_kb) >> 10} MB more"  # the stated budget


def test_a_big_jpeg_is_reduced_while_decoding(tmp_path):
    from PIL import Image, ImageDraw

    from cnn import images

    picture = Image.new("RGB", (4800, 4800), (255, 255, 255))
    ImageDraw.Draw(picture).line([(1500, 800), (3300, 800), (2200, 4000)], fill=(0, 0, 0), width=300)  # a 7
    picture.save(tmp_path / "seven.jpg", quality=90)
    opened = images.read_image(tmp_path / "seven.jpg", max_side=images.WORK_SIDE)
    assert opened.size == (1200, 1200)  # decoded at a quarter: still more than the 1024 needed
    image, notes = read_digit(tmp_path / "seven.jpg")
    assert image.shape == (28, 28) and image.max() > 200
    assert any("1200x1200 reduced to" in n for n in notes)


def test_sixteen_bit_gray_is_scaled_by_its_depth(tmp_path):
    """An MNIST digit saved as 16-bit PNG reads as the same digit (Pillow's own
    conversion clips every value above 255, so mid-greys became full ink)."""
    from PIL import Image

    from cnn.data import load_mnist_split
    from cnn.images import read_gray

    x, _ = load_mnist_split(None, "test", 1)
    digit = np.round(x[0, :, :, 0] * 255).astype(np.uint8)
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "d16.png")
    Image.fromarray(digit).save(tmp_path / "d8.png")
    assert Image.open(tmp_path / "d16.png").mode == "I;16"
    np.testing.assert_array_equal(read_gray(tmp_path / "d16.png"), digit)
    np.testing.assert_array_equal(read_digit(tmp_path / "d16.png")[0], read_digit(tmp_path / "d8.png")[0])


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

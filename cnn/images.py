"""Image files, read and written with Pillow (PNG, JPEG, GIF, BMP, WebP...).

Reading is bounded like every reader here (:mod:`cnn.limits`): a regular
file only, at most MAX_IMAGE_FILE_BYTES, and the header's size checked
against MAX_IMAGE_PIXELS (and Pillow's own decompression-bomb limit) before
any pixel is decoded; truncated or corrupt files are refused by name.

Memory: the decoded pixels may take at most MAX_IMAGE_DECODE_BYTES (256 MiB,
as Pillow holds them: one byte a pixel for gray, four for colour; the 64
megapixels of MAX_IMAGE_PIXELS fit it, and the check guards a change of
either). A JPEG is reduced while it is decoded (by 2, 4 or 8, Pillow's
``draft``) to no more pixels than the caller needs. A digit's picture is then reduced to at most WORK_SIDE pixels on
its longest side (whole-pixel box averages) before any arithmetic, so the
rest of the preparation works on a megapixel at most: an 8176x8176 PNG is
read in 67 MB and a fraction of a second.

16-bit grayscale (PNG's ``I;16``) is scaled by its bit depth, 65535 to 255
(Pillow's own conversion to 8 bits clips everything above 255 to white).
"""
import io
import math

import numpy as np

from .errors import DataFileError, InputError
from .limits import MAX_IMAGE_DECODE_BYTES, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS, read_regular

WORK_SIDE = 1024  # a digit's picture is reduced to this many pixels on its longest side, at most
# bytes a decoded pixel takes in Pillow, by mode (every other mode: 4)
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "La": 2, "PA": 2, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class EmptyPictureError(InputError):
    """A picture with no ink: nothing to read a digit from."""


def _pil():
    from PIL import Image

    return Image


def read_image(path, max_side=None):
    """An image file as a Pillow image (not yet converted), checked before decoding.

    Parameters
    ----------
    max_side : int, optional
        The caller needs no more than this many pixels on the longest side: a
        JPEG is decoded at the smallest of 1/2, 1/4 or 1/8 of its size that
        still has them.

    Raises
    ------
    DataFileError : not an image, corrupt, truncated, empty or too large (its
        pixels, or their decoded bytes beyond MAX_IMAGE_DECODE_BYTES)
    """
    Image = _pil()
    data = read_regular(path, DataFileError, MAX_IMAGE_FILE_BYTES)
    try:
        image = Image.open(io.BytesIO(data))
    except Exception as err:  # Pillow's UnidentifiedImageError and friends
        raise DataFileError(f"{path}: not an image file Pillow can read ({type(err).__name__})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise DataFileError(f"{path}: the image is empty ({width}x{height})")
    if width * height > MAX_IMAGE_PIXELS:
        raise DataFileError(f"{path}: {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS} read here")
    if image.format == "JPEG":  # reduced while decoding: to what is needed, and to what fits
        scale = 1
        for smaller in (2, 4, 8):
            if max_side is not None and max(width, height) // smaller >= max_side:
                scale = smaller  # still as many pixels as the caller needs
        while scale < 8 and decoded_bytes(image.mode, width // scale, height // scale) > MAX_IMAGE_DECODE_BYTES:
            scale *= 2
        if scale > 1:
            image.draft(image.mode, (-(-width // scale), -(-height // scale)))
    need = decoded_bytes(image.mode, *image.size)
    if need > MAX_IMAGE_DECODE_BYTES:
        raise DataFileError(f"{path}: {width}x{height} {image.mode} pixels would take {need >> 20} MiB decoded, "
                            f"more than the {MAX_IMAGE_DECODE_BYTES >> 20} MiB read here (save it smaller or as "
                            "grayscale)")
    try:
        image.load()
    except Exception as err:  # truncated data, a decompression bomb, a broken chunk
        raise DataFileError(f"{path}: corrupt or truncated image ({type(err).__name__}: {err})") from None
    return image


def decoded_bytes(mode, width, height):
    """What Pillow's decoded pixels of this mode and size take."""
    return width * height * _PIXEL_BYTES.get(mode, 4)


def _eight_bit(image):
    """A 16-bit grayscale picture as 8-bit 'L', scaled by the bit depth
    (round(v * 255 / 65535)), in bands of rows so that no full-size
    intermediate is made; any other picture as it is."""
    if image.mode not in _SIXTEEN_BIT:
        return image
    Image = _pil()
    width, height = image.size
    values = np.asarray(image)  # uint16, one copy
    out = np.empty((height, width), np.uint8)
    step = max(1, (1 << 20) // max(width, 1))
    for top in range(0, height, step):
        band = values[top:top + step].astype(np.uint32)
        out[top:top + step] = (band * 255 + 32767) // 65535
    return Image.fromarray(out, "L")


def _reduced(image, side):
    """``image`` with its longest side at most ``side``: whole-pixel box
    averages (``Image.reduce``), in a mode that allows them."""
    width, height = image.size
    factor = math.ceil(max(width, height) / side)
    if factor <= 1:
        return image
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode == "P":
        image = image.convert("PA" if "transparency" in image.info else "L")
        if image.mode == "PA":
            image = image.convert("LA")
    return image.reduce(factor)


def read_gray(path):
    """An image file as uint8 grayscale (rows, cols); transparent pixels are
    composited over white first (a drawing's background)."""
    Image = _pil()
    image = _eight_bit(read_image(path))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def write_png(path, image, scale=1, caption=None):
    """Write a grayscale picture (uint8 (rows, cols), 0 black, 255 white) as PNG,
    each pixel a ``scale`` x ``scale`` block, atomically; ``caption`` lines
    are written in a white band below it."""
    from .files import atomic_write_bytes

    Image = _pil()
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InputError(f"a PNG image must be uint8 (rows, cols), got {image.dtype} {image.shape}")
    picture = Image.fromarray(np.repeat(np.repeat(image, scale, axis=0), scale, axis=1))
    if caption:
        from PIL import ImageDraw, ImageFont

        lines = caption.split("\n")
        font = ImageFont.load_default(size=13)
        band = 8 + 17 * len(lines)
        width = max(picture.width, 12 + max(int(font.getlength(line)) for line in lines))
        framed = Image.new("L", (width, picture.height + band), 255)
        framed.paste(picture, ((width - picture.width) // 2, 0))
        draw = ImageDraw.Draw(framed)
        for k, line in enumerate(lines):
            draw.text((6, picture.height + 4 + 17 * k), line, fill=0, font=font)
        picture = framed
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


# ------------------------------------------------------------ a drawing made to look like MNIST
# MNIST's digits (LeCun, Cortes and Burges' description of the data set) were
# made by scaling each digit's ink to fit a 20x20 box with its aspect ratio
# kept (anti-aliased, hence the gray levels), then placing it in a 28x28 image
# so that its centre of mass sits at the centre. A drawing fed as it is (a
# "7" filling a 280x280 canvas, or small in a corner) looks nothing like that.
MNIST_BOX = 20
MNIST_SIZE = 28
MNIST_STROKE = 2.5  # pixels, at the 20-pixel scale (a typical MNIST pen)


def _stroke_width(mask):
    """A pen's width from its ink: the ink's area over half its outline's length."""
    mask = np.pad(mask, 1)  # ink at the crop's edge has an outline there too
    edges = (mask[1:] != mask[:-1]).sum() + (mask[:, 1:] != mask[:, :-1]).sum()
    return 2 * mask.sum() / max(edges, 1)


def ink(path):
    """A picture's ink as bright-on-dark floats in [0, 1] (rows, cols), and notes on what was done.

    A transparent background (alpha) makes the opaque strokes the ink,
    whatever their colour; otherwise the picture is grayscale, inverted when
    its border is light (dark ink on paper) so that the ink is bright, as in
    MNIST.
    """
    Image = _pil()
    image = _eight_bit(read_image(path, max_side=WORK_SIDE))
    notes = []
    if max(image.size) > WORK_SIDE:
        width, height = image.size
        image = _reduced(image, WORK_SIDE)
        notes.append(f"{width}x{height} reduced to {image.size[0]}x{image.size[1]} before reading the digit")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        alpha = np.asarray(image.convert("RGBA"), dtype=np.float64)[..., 3] / 255
        if alpha.min() < 0.5 < alpha.max():
            notes.append("transparent background: the opaque strokes are the ink")
            return alpha, notes
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return bright_ink(np.asarray(image.convert("L"), dtype=np.float64) / 255, notes)


def bright_ink(gray, notes):
    """Grayscale in [0, 1] with the ink bright, as in MNIST: inverted when the
    border (the page) is light. Returns (values, notes)."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        return 1 - gray, notes + ["light background: inverted, so the ink is bright as in MNIST"]
    return gray, notes


def mnist_style(values, notes=None):
    """Crop to the ink, scale its longest side to 20 pixels (aspect kept),
    and centre its centre of mass in 28x28, as MNIST's digits were made.

    Parameters
    ----------
    values : float array (rows, cols), bright ink on a dark background, in [0, 1]

    Returns
    -------
    image : uint8 (28, 28), 0..255
    notes : list of str, what was done (and a warning when no digit is seen)
    """
    Image = _pil()
    notes = list(notes or [])
    values = np.asarray(values, dtype=np.float64)
    background = np.median(np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]]))
    signal = np.clip(values - background, 0, None)
    peak = signal.max()
    if peak < 0.1:
        raise EmptyPictureError("the picture is empty: it is nearly uniform (no stroke stands out from the "
                                "background by a tenth of the range), so there is no digit to read")
    signal /= peak
    rows, cols = np.nonzero(signal > 0.2)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = signal[top:bottom, left:right]
    h, w = crop.shape
    scale = MNIST_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    picture = Image.fromarray((crop * 255).astype(np.uint8))
    # MNIST's pens drew strokes about 2 pixels wide at this scale: a thin pen on a
    # big canvas would shrink to a hairline, so it is widened first (a max filter)
    stroke = _stroke_width(crop > 0.5) * scale
    if stroke < MNIST_STROKE:
        grow = 2 * int(round((MNIST_STROKE - stroke) / scale / 2)) + 1
        if grow > 1:
            from PIL import ImageFilter

            picture = picture.filter(ImageFilter.MaxFilter(grow))
            notes.append(f"thin strokes ({stroke:.1f} px at MNIST's scale) widened to about {MNIST_STROKE:g} px")
    small = np.asarray(picture.resize(size, Image.Resampling.LANCZOS), dtype=np.float64)
    small = np.clip(small, 0, 255)
    total = small.sum()
    cy = (small.sum(axis=1) * np.arange(small.shape[0])).sum() / total
    cx = (small.sum(axis=0) * np.arange(small.shape[1])).sum() / total
    canvas = np.zeros((3 * MNIST_SIZE, 3 * MNIST_SIZE))
    y0 = MNIST_SIZE + int(round(MNIST_SIZE / 2 - 0.5 - cy))
    x0 = MNIST_SIZE + int(round(MNIST_SIZE / 2 - 0.5 - cx))
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    image = canvas[MNIST_SIZE:2 * MNIST_SIZE, MNIST_SIZE:2 * MNIST_SIZE]
    notes.append(f"ink cropped to {w}x{h} at ({left}, {top}), scaled to {size[0]}x{size[1]}, "
                 "centred by its centre of mass in 28x28 (as MNIST's digits were made)")
    return np.round(image).astype(np.uint8), notes


def read_digit(path):
    """Any picture of a digit (PNG, JPEG, ..., any size) as the 28x28 uint8
    image an MNIST model expects, and notes on what was done.

    Raises
    ------
    DataFileError : not an image, too large, or empty (no ink to read a digit from)
    """
    values, notes = ink(path)
    if values.shape == (MNIST_SIZE, MNIST_SIZE) and not notes:
        if values.max() - values.min() < 0.1:
            raise DataFileError(f"{path}: the picture is empty: all its pixels are nearly the same, "
                                "so there is no digit to read")
        return np.round(values * 255).astype(np.uint8), ["already 28x28 light-on-dark: used as it is"]
    try:
        return mnist_style(values, notes)
    except EmptyPictureError as err:
        raise DataFileError(f"{path}: {err}") from None

"""Image files, read and written with Pillow (PNG, JPEG, GIF, BMP, WebP...).

Reading is bounded like every reader here (:mod:`cnn.limits`): a regular
file only, at most MAX_IMAGE_FILE_BYTES, and the header's size checked
against MAX_IMAGE_PIXELS (and Pillow's own decompression-bomb limit) before
any pixel is decoded; truncated or corrupt files are refused by name.
"""
import io

import numpy as np

from .errors import DataFileError, InputError
from .limits import MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS, read_regular


def _pil():
    from PIL import Image

    return Image


def read_image(path):
    """An image file as a Pillow image (not yet converted), checked before decoding.

    Raises
    ------
    DataFileError : not an image, corrupt, truncated, empty or too large
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
    try:
        image.load()
    except Exception as err:  # truncated data, a decompression bomb, a broken chunk
        raise DataFileError(f"{path}: corrupt or truncated image ({type(err).__name__}: {err})") from None
    return image


def read_gray(path):
    """An image file as uint8 grayscale (rows, cols); transparent pixels are
    composited over white first (a drawing's background)."""
    Image = _pil()
    image = read_image(path)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def write_png(path, image, scale=1):
    """Write a grayscale picture (uint8 (rows, cols), 0 black, 255 white) as PNG,
    each pixel a ``scale`` x ``scale`` block, atomically."""
    from .io import atomic_write_bytes

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InputError(f"a PNG image must be uint8 (rows, cols), got {image.dtype} {image.shape}")
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    _pil().fromarray(image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())

"""MNIST data: the IDX format, the chapter's text format, one-hot labels.

IDX (big-endian): two zero bytes, a type byte (0x08 = unsigned byte, ...), a
byte giving the number of dimensions, then one uint32 per dimension, then the
values. MNIST images have magic 2051 (0x00000803: ubyte, 3 dims: count, rows,
cols); labels have magic 2049 (0x00000801: ubyte, 1 dim). Files may be gzipped.

The chapter's text format has one record a line: ``label ** p1 p2 ... p784``,
raw 0..255 pixels, labels not one-hot.
"""
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DataFileError, InputError
from .files import atomic_write_bytes
from .limits import MAX_DEFLATE_RATIO, MAX_IDX_BYTES, MAX_TEXT_LINE_BYTES, open_regular

IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
BUNDLED_DATA = Path(__file__).resolve().parent.parent / "data"


def _open_bytes(path):
    """An open binary stream of a regular file's content (gunzipped if it is
    gzip), whether it was gzipped, and the file's size on disk."""
    raw = open_regular(path, DataFileError)
    size = os.fstat(raw.fileno()).st_size
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), True, size
    return raw, False, size


def _record_count(value, what="max_records"):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{what} must be an int >= 0, got {value!r}")
    return int(value)


def read_idx(path, max_records=None):
    """Read an IDX file (plain or gzipped) into a NumPy array.

    The header is checked before anything is allocated: the magic number, the
    type, the dimensions, and that the file holds exactly the values the header
    promises.

    Parameters
    ----------
    path : str or Path
    max_records : int, optional
        Read only the first ``max_records`` entries along the first axis.

    Returns
    -------
    ndarray of the file's type (native byte order), shape as in the header.

    Raises
    ------
    DataFileError
        On a missing, corrupt, truncated or oversized file.
    """
    path = Path(path)
    max_records = _record_count(max_records)
    stream, gzipped, file_size = _open_bytes(path)
    try:
        with stream:
            header = stream.read(4)
            if len(header) < 4:
                raise DataFileError(f"{path}: too short for an IDX header ({len(header)} bytes)")
            zero, type_code, ndim = struct.unpack(">HBB", header)
            if zero != 0 or type_code not in IDX_TYPES or ndim == 0:
                magic = struct.unpack(">I", header)[0]
                raise DataFileError(
                    f"{path}: not an IDX file (magic number {magic}, expected e.g. "
                    f"{IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels)"
                )
            dims_bytes = stream.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise DataFileError(f"{path}: truncated header ({ndim} dimensions announced)")
            dims = struct.unpack(f">{ndim}I", dims_bytes)
            dtype = IDX_TYPES[type_code]
            record = math.prod(dims[1:]) * dtype.itemsize  # Python ints: a lying header cannot overflow
            expected = dims[0] * record
            if not gzipped and file_size != 4 + 4 * ndim + expected:
                raise DataFileError(
                    f"{path}: header promises {dims} ({expected} bytes of data) but the file "
                    f"holds {file_size - 4 - 4 * ndim} bytes of data (truncated or corrupt)"
                )
            if gzipped and expected > MAX_DEFLATE_RATIO * file_size + 1024:
                raise DataFileError(
                    f"{path}: header promises {dims} ({expected} bytes), more than a "
                    f"{file_size}-byte gzip file can hold"
                )
            if expected > MAX_IDX_BYTES:
                raise DataFileError(f"{path}: header promises {dims} ({expected} bytes), more than the "
                                    f"{MAX_IDX_BYTES} an IDX file may hold here")
            count = dims[0] if max_records is None else min(dims[0], int(max_records))
            want = count * record
            data = stream.read(want)
            if len(data) < want:
                raise DataFileError(
                    f"{path}: truncated: header promises {dims} but only "
                    f"{len(data) // max(record, 1)} records are there"
                )
            if gzipped and count == dims[0] and stream.read(1):
                raise DataFileError(f"{path}: more data than the header {dims} promises")
    except (OSError, EOFError, zlib.error) as err:  # corrupt gzip stream or CRC
        raise DataFileError(f"{path}: corrupt file ({err})") from None
    array = np.frombuffer(data, dtype=dtype).reshape((count, *dims[1:]))
    return array.astype(dtype.newbyteorder("="))


def read_idx_images(path, max_records=None):
    """MNIST-style images (magic 2051): uint8 array (n, rows, cols)."""
    images = read_idx(path, max_records)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFileError(f"{path}: expected images (magic {IMAGES_MAGIC}), got a {images.dtype} array of {images.ndim} dimensions")
    return images


def read_idx_labels(path, max_records=None):
    """MNIST-style labels (magic 2049): uint8 array (n,)."""
    labels = read_idx(path, max_records)
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataFileError(f"{path}: expected labels (magic {LABELS_MAGIC}), got a {labels.dtype} array of {labels.ndim} dimensions")
    return labels


def write_idx(path, array):
    """Write an array as an uncompressed IDX file (or gzipped if ``path`` ends in .gz)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise InputError(f"IDX cannot hold dtype {array.dtype}")
    header = struct.pack(">HBB", 0, codes[native], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(IDX_TYPES[codes[native]]).tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(path, payload)


# ---------------------------------------------------------------- text format
def write_text(path, images, labels):
    """Write records in the chapter's format, one a line: ``label ** p1 ... pN``.

    Parameters
    ----------
    images : uint8 array (n, rows, cols) or (n, pixels), raw 0..255
    labels : integer array (n,)
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.shape[0] != labels.shape[0]:
        raise InputError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    flat = images.reshape(images.shape[0], -1)
    lines = [f"{int(lab)} ** " + " ".join(map(str, row.tolist())) for lab, row in zip(labels, flat)]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("ascii"))


def read_text(path, pixels=784, num_classes=10, max_records=None):
    """Read the chapter's text format (the first ``max_records`` records, or all).

    Returns
    -------
    images : uint8 array (n, pixels)
    labels : uint8 array (n,)

    Raises
    ------
    DataFileError
        Naming the line, on a wrong field count, a missing ``**``, a label
        outside 0..num_classes-1 or a pixel outside 0..255.
    """
    path = Path(path)
    max_records = _record_count(max_records)
    images, labels = [], []
    with open_regular(path, DataFileError) as f:
        number = 0
        while max_records is None or len(images) < max_records:
            # one line at a time, never more than a record can be long: a 60 MB
            # line is refused after 64 KB, not split into fields first
            raw = f.readline(MAX_TEXT_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_TEXT_LINE_BYTES:
                raise DataFileError(f"{path}, line {number}: longer than {MAX_TEXT_LINE_BYTES} bytes; "
                                    f"a record of {pixels} pixels is far shorter")
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != pixels + 2 or fields[1] != b"**":
                raise DataFileError(
                    f"{path}, line {number}: expected 'label ** p1 ... p{pixels}' "
                    f"({pixels + 2} fields), got {len(fields)} fields"
                )
            try:
                values = np.array([int(v) for v in [fields[0], *fields[2:]]], dtype=np.int64)
            except (ValueError, OverflowError):
                raise DataFileError(f"{path}, line {number}: a field is not an integer of 0..255") from None
            if not 0 <= values[0] < num_classes:
                raise DataFileError(f"{path}, line {number}: label {values[0]} is outside 0..{num_classes - 1}")
            if values[1:].min() < 0 or values[1:].max() > 255:
                raise DataFileError(f"{path}, line {number}: a pixel is outside 0..255")
            labels.append(values[0])
            images.append(values[1:])
    if not images:
        raise DataFileError(f"{path}: no records")
    return np.array(images, dtype=np.uint8), np.array(labels, dtype=np.uint8)


# ---------------------------------------------------------------- preparation
def one_hot(labels, num_classes=10):
    """Integer labels (n,) to one-hot float32 rows (n, num_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels must be one-dimensional (n,), got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise InputError(f"label {bad} is outside 0..{num_classes - 1}")
    out = np.zeros((labels.size, num_classes), dtype=np.float32)
    out[np.arange(labels.size), labels] = 1
    return out


def to_model_input(images):
    """Raw 0..255 images (n, rows, cols) or (n, rows*cols) to float32 NHWC in [0, 1].

    Flat rows must be square images (784 -> 28x28).
    """
    images = np.asarray(images)
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise InputError(f"flat images of {images.shape[1]} pixels are not square")
        images = images.reshape(-1, side, side)
    if images.ndim != 3:
        raise InputError(f"images must be (n, rows, cols) or (n, pixels), got shape {images.shape}")
    return (images.astype(np.float32) / 255.0)[..., None]


def find_mnist_file(directory, split, kind):
    """The one file in ``directory`` for e.g. split 'train', kind 'images'."""
    prefix = "train" if split == "train" else "t10k"
    idx = "idx3" if kind == "images" else "idx1"
    matches = sorted(Path(directory).glob(f"{prefix}*-{kind}-{idx}-ubyte*"))
    if len(matches) != 1:
        found = ", ".join(m.name for m in matches) or "none"
        raise DataFileError(
            f"{directory}: expected one {prefix}*-{kind}-{idx}-ubyte[.gz] file, found {found}"
        )
    return matches[0]


def load_mnist_split(directory, split, n=None, what=None):
    """One split ('train' or 'test') of an MNIST-format folder, only its first
    ``n`` records decoded: (x float32 (n, 28, 28, 1) in [0, 1], labels uint8 (n,))."""
    images, labels = _raw_split(directory, split, n, what)
    return to_model_input(images), labels


def _raw_split(directory, split, n=None, what=None):
    """One split's uint8 images (n, rows, cols) and labels; a count beyond what the files hold is refused."""
    directory = BUNDLED_DATA if directory is None else Path(directory)
    if not directory.is_dir():
        raise DataFileError(f"{directory}: no such directory")
    n = _record_count(n, what or f"the number of {split} records")  # what: the argument's name, for messages
    images_path = find_mnist_file(directory, split, "images")
    images = read_idx_images(images_path, n)
    if n is not None and len(images) < n:
        raise InputError(f"{what or 'n'}={n}: more {split} images than {images_path} holds ({len(images):,})")
    labels = read_idx_labels(find_mnist_file(directory, split, "labels"), n)
    if len(images) != len(labels):
        raise DataFileError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    return images, labels


def load_raw(directory, caller="load_data"):
    """Both splits of an MNIST-format folder as Keras's ``datasets`` return them:
    ((uint8 (n, 28, 28), uint8 (n,)), (the same for the test split))."""
    if directory is not None and not Path(directory).is_dir():
        raise DataFileError(f"{caller}: {directory} is not a folder (nothing is downloaded here: give the "
                            "folder holding the four MNIST-format files)")
    return _raw_split(directory, "train"), _raw_split(directory, "test")


def load_mnist(directory=None, n_train=None, n_test=None):
    """Load an MNIST-format data set, ready for the model.

    Parameters
    ----------
    directory : path, optional
        A directory holding the four files (train images and labels, t10k
        images and labels), plain or gzipped: a full MNIST download, Debian's
        Fashion-MNIST, or by default the bundled subset in ``data/``.
    n_train, n_test : int, optional
        Keep only the first records of each split (more than the files hold
        is refused, naming both counts).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x float32 (n, 28, 28, 1) scaled to [0, 1]; y uint8 labels (n,).
    """
    return (load_mnist_split(directory, "train", n_train, "n_train"),
            load_mnist_split(directory, "test", n_test, "n_test"))

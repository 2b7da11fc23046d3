"""What the engine will read from a file, stated in one place, and the one
way every reader opens a file.

Every reader (model ``.npz``, ``.keras``, ``.weights.h5``, images, IDX, the
chapter's text format) follows the same discipline:

1. :func:`open_regular`: a regular file only, checked on the open descriptor
   (a FIFO, a device such as ``/dev/zero`` or a directory is refused before a
   byte is read, and nothing can swap the file between check and read);
2. the sizes a file declares (a zip member, an ``.npy`` header, an IDX
   header, an HDF5 dataset, an image header) are checked against the bytes
   actually present and against the limits below *before* anything is
   allocated;
3. only the part needed is read;
4. every failure is the engine's own error (``DataFileError``,
   ``ModelFileError``) naming the file and the problem.
"""
import os
import stat
from pathlib import Path

# deflate cannot compress better than about 1032:1: a compressed stream that
# claims more data than that is lying
MAX_DEFLATE_RATIO = 1100
MAX_CONFIG_BYTES = 1 << 20          # a model's JSON configuration
MAX_CONFIG_DEPTH = 50               # nesting of that JSON (deeper: refused, never a RecursionError)
MAX_LAYERS = 10_000                 # layers a model file may list
MAX_NODES = 10_000                  # layer calls (and inputs, outputs) a graph in a file may have
MAX_WEIGHT_BYTES = 8 << 30          # weights a model file may ask for, in all
MAX_IMAGE_PIXELS = 1 << 26          # an image to predict (64 megapixels; Pillow's own bomb check is lower)
MAX_IMAGE_FILE_BYTES = 256 << 20    # an image file
MAX_IMAGE_DECODE_BYTES = 256 << 20  # an image's decoded pixels (JPEGs reduced while decoding to fit)
MAX_TEXT_LINE_BYTES = 1 << 16       # one record of the chapter's text format (a real one is < 4 KB)
MAX_IDX_BYTES = 16 << 30            # the data an IDX header may declare
MAX_HISTORY_BYTES = 16 << 20        # a training history (.history.json)

LIMITS = {
    "zip/gzip/deflate ratio": MAX_DEFLATE_RATIO,
    "model configuration, bytes": MAX_CONFIG_BYTES,
    "model configuration, nesting depth": MAX_CONFIG_DEPTH,
    "layers in a model file": MAX_LAYERS,
    "weights a model file may ask for, bytes": MAX_WEIGHT_BYTES,
    "image, pixels": MAX_IMAGE_PIXELS,
    "image file, bytes": MAX_IMAGE_FILE_BYTES,
    "image decoded, bytes": MAX_IMAGE_DECODE_BYTES,
    "text-format line, bytes": MAX_TEXT_LINE_BYTES,
    "IDX data, bytes": MAX_IDX_BYTES,
    "history file, bytes": MAX_HISTORY_BYTES,
}


def open_regular(path, error):
    """Open ``path`` for reading in binary, refusing anything but a regular file.

    The open itself cannot block (O_NONBLOCK: a FIFO with no writer would
    otherwise wait forever); the type is checked on the descriptor that was
    opened, then the descriptor is made blocking again.

    Parameters
    ----------
    error : the exception class to raise (DataFileError or ModelFileError)
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a file") from None
    except OSError as err:
        raise error(f"{path}: cannot be opened ({err.strerror or err})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                    else "not a regular file")
            raise error(f"{path}: is {kind}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, error, max_bytes):
    """The whole content of a regular file of at most ``max_bytes`` bytes."""
    with open_regular(path, error) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise error(f"{path}: {size} bytes, more than the {max_bytes} this reader accepts")
        data = f.read(size + 1)  # the size present, never the limit: read(n) allocates n
    if len(data) > max_bytes:
        raise error(f"{path}: more than the {max_bytes} bytes this reader accepts")
    return data


def json_depth(value, limit=MAX_CONFIG_DEPTH):
    """The nesting depth of parsed JSON, counted without recursion, stopping past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def load_json(text, error, where):
    """Parse JSON text, refusing deep nesting and non-finite numbers, as ``error``."""
    import json

    def refuse_constant(name):
        raise ValueError(f"{name} is not a number JSON allows")

    # a quick bound before parsing: nesting needs brackets, and the parser recurses on them
    depth = running = 0
    for ch in text:
        if ch in "[{":
            running += 1
            depth = max(depth, running)
        elif ch in "]}":
            running -= 1
    if depth > MAX_CONFIG_DEPTH:
        raise error(f"{where}: nested {depth} levels deep, more than the {MAX_CONFIG_DEPTH} accepted")
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as err:
        raise error(f"{where}: not valid JSON ({type(err).__name__}: {err})") from None

"""``cnn.datasets.fashion_mnist.load_data()``: Fashion-MNIST as Keras returns it, from Debian's package or a folder."""
from pathlib import Path

from ..data import load_raw
from ..errors import DataFileError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def load_data(path=None):
    """Fashion-MNIST's two splits (60,000 and 10,000 images) as Keras returns them.

    Parameters
    ----------
    path : folder, optional
        A folder of the four files in MNIST's format; by default where
        Debian's ``dataset-fashion-mnist`` installs them.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : uint8 (n, 28, 28) pixels 0..255, uint8 (n,) labels
    """
    if path is None:
        if not DEBIAN.is_dir():
            raise DataFileError(f"Fashion-MNIST is not installed ({DEBIAN} does not exist): apt-get install "
                                "dataset-fashion-mnist, or give the folder of its four files: load_data(path)")
        path = DEBIAN
    return load_raw(path, "fashion_mnist.load_data")

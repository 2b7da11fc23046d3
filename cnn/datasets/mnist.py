"""``cnn.datasets.mnist.load_data()``: MNIST as Keras returns it, from the bundled subset or a folder."""
from ..data import load_raw


def load_data(path=None):
    """MNIST's two splits as Keras returns them.

    Parameters
    ----------
    path : folder, optional
        A folder of the four MNIST files (IDX, plain or gzipped), such as a full
        MNIST download; by default the subset bundled with the engine (4,500
        training images, the 10,000 test images). Keras's ``path`` names a
        file to download into; nothing is downloaded here, so a name that is
        not a folder is refused.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : uint8 (n, 28, 28) pixels 0..255, uint8 (n,) labels
    """
    return load_raw(path, "mnist.load_data")

"""Keras's ``keras.datasets`` for the data sets this engine can read without a
network: ``cnn.datasets.mnist.load_data()`` and
``cnn.datasets.fashion_mnist.load_data()``, with Keras's return values
(``(x_train, y_train), (x_test, y_test)``: uint8 images (n, 28, 28) of raw
0..255 pixels, uint8 labels (n,)). Nothing is downloaded: MNIST comes from
the subset bundled in ``data/`` (the first 4,500 training images and the
whole test set) or from a folder you name; Fashion-MNIST from Debian's
``dataset-fashion-mnist`` or a folder you name.
"""
from . import fashion_mnist, mnist  # noqa: F401

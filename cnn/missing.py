"""Keras names this engine does not have, and what to use instead.

``cnn.<name>`` and ``cnn.layers.<name>`` for a name of Keras 3's that the
engine lacks raise :class:`NotInEngineError` with the name and a way
forward, never a bare ``AttributeError``. It is an ``ImportError``, not an
``AttributeError``: Python turns an ``AttributeError`` raised during
``from cnn.layers import Add`` (the way tutorials write it) into its own
"cannot import name", losing the message. So ``hasattr`` on one of these
names raises too, on purpose: code that asks for a Keras name is about to
use it. Any other missing name is a plain ``AttributeError``.
"""
from .errors import NotInEngineError

# cnn.<name>
TOP = {
    "ops": "keras.ops is not in this engine: layers run on NumPy arrays, so NumPy's functions serve outside a model",
    "applications": "keras.applications (pretrained ImageNet models) is not in this engine: nothing is downloaded "
                    "here; cnn.architectures has lenet5, small_vgg, small and the chapter's model",
    "mixed_precision": "mixed precision is not in this engine: it computes in float32 or float64 (cnn.set_floatx)",
    "distribution": "keras.distribution is not in this engine: it runs on the CPU's cores in one process",
    "preprocessing": "keras.preprocessing is not in this engine: cnn.data reads MNIST-format files and "
                     "cnn.images reads pictures",
}

# cnn.layers.<name>
LAYERS = {
    **{name: "not in this engine yet: Multiply then a sum over the last axis (a Dense or a Lambda-free layer "
             "of your own, docs/custom-layers.md) computes a dot product" for name in ("Dot", "dot")},
    "Normalization": "not in this engine yet: standardize the arrays before fit ((x - mean) / std)",
    **{name: "not in this engine yet (RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast, "
             "RandomBrightness and RandomCrop are): augment the arrays before fit"
       for name in ("RandomHue", "RandomSaturation", "RandomGrayscale", "RandomColorJitter", "RandomSharpness",
                    "RandomShear", "RandomErasing", "RandomPerspective", "RandAugment", "AugMix", "MixUp", "CutMix",
                    "RandomInvert", "RandomPosterization", "RandomElasticTransform",
                    "RandomGaussianBlur", "RandomColorDegeneration", "Solarization", "AutoContrast", "Equalization")},
    **{name: "this engine is for convolutional networks on images: recurrent layers are not in it"
       for name in ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "RNN", "ConvLSTM2D")},
    **{name: "1-D and 3-D convolutions are not in this engine: Conv2D on NHWC images is"
       for name in ("Conv1D", "Conv3D", "MaxPooling1D", "MaxPooling3D", "AveragePooling1D", "AveragePooling3D",
                    "GlobalAveragePooling1D", "GlobalMaxPooling1D")},
    "Embedding": "not in this engine: it is for images (NHWC), not token sequences",
    "MultiHeadAttention": "attention layers are not in this engine",
    "Lambda": "not in this engine: a function has no backward pass here; write a Layer subclass with forward "
              "and backward (docs/custom-layers.md) and check it with cnn.gradcheck.check_layer",
    "PReLU": "not in this engine yet: LeakyReLU (a fixed slope) and ELU are here",
    "GaussianNoise": "not in this engine yet: Dropout is here",
    "Permute": "not in this engine yet: Reshape and Flatten are here",
}


def refuse(module, name, table):
    """The error for ``module.name``: the engine's own when Keras has the name."""
    if name in table:
        return NotInEngineError(f"{module}.{name}: {table[name]}")
    return AttributeError(f"module {module!r} has no attribute {name!r}")

"""Weight initializers, with Keras's names, fans and scales.

Each initializer is called as ``init(shape, rng, dtype)``. The variance-scaling
family (Glorot, He, LeCun) draws from a uniform on [-limit, limit] with
``limit = sqrt(3 * scale / fan)`` or from a normal truncated at two standard
deviations with ``stddev = sqrt(scale / fan) / 0.87962566103423978`` (the
truncation's correction), as Keras does; the numbers differ from Keras's
(another generator), the distributions do not.
"""
import numpy as np

from .errors import InputError

TRUNCATION_CORRECTION = 0.87962566103423978  # std of a unit normal truncated at +-2


def fans(shape):
    """Keras's (fan_in, fan_out) of a kernel shape.

    Dense (in, out): fan_in = in, fan_out = out. Conv (kh, kw, cin, cout): each
    input channel is seen through kh*kw weights, so fan_in = kh*kw*cin and
    fan_out = kh*kw*cout. A vector (n,): fan_in = fan_out = n.
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return receptive * shape[-2], receptive * shape[-1]


def _truncated_normal(rng, shape, stddev):
    """Normal(0, stddev) with every draw beyond two standard deviations redrawn."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


class Initializer:
    name = None

    def get_config(self):
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class VarianceScaling(Initializer):
    """Keras's ``VarianceScaling(scale, mode, distribution)``."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise InputError(f"VarianceScaling mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise InputError(f"VarianceScaling distribution {distribution!r} is not supported")
        if seed is not None:
            raise InputError("initializer seed= is not supported: use cnn.set_seed")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, rng, dtype=np.float32):
        fan_in, fan_out = fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            # written so that Glorot's limit is sqrt(6 / (fan_in + fan_out)) to the last bit
            if self.mode == "fan_avg" and fan >= 1:
                limit = np.sqrt(3.0 * self.scale * 2 / (fan_in + fan_out))
            else:
                limit = np.sqrt(3.0 * self.scale / max(1.0, fan))
            return rng.uniform(-limit, limit, size=shape).astype(dtype)
        if self.distribution == "untruncated_normal":
            return (rng.standard_normal(shape) * np.sqrt(variance)).astype(dtype)
        return _truncated_normal(rng, shape, np.sqrt(variance) / TRUNCATION_CORRECTION).astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


def _named(class_name, scale, mode, distribution):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {}

    return type(class_name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                                 "__doc__": f"VarianceScaling({scale}, {mode!r}, {distribution!r})"})


GlorotUniform = _named("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _named("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _named("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _named("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _named("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _named("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Zeros(Initializer):
    def __call__(self, shape, rng=None, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, rng=None, dtype=np.float32):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, rng=None, dtype=np.float32):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        if seed is not None:
            raise InputError("initializer seed= is not supported: use cnn.set_seed")
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, rng, dtype=np.float32):
        return rng.uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        if seed is not None:
            raise InputError("initializer seed= is not supported: use cnn.set_seed")
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, rng, dtype=np.float32):
        return (self.mean + self.stddev * rng.standard_normal(shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    def __call__(self, shape, rng, dtype=np.float32):
        return (self.mean + _truncated_normal(rng, shape, self.stddev)).astype(dtype)


# the functions of the first versions, kept: glorot_uniform(shape, rng) draws
# exactly what GlorotUniform() draws
def glorot_uniform(shape, rng, dtype=np.float32):
    """Uniform on [-limit, limit] with limit = sqrt(6 / (fan_in + fan_out))."""
    return GlorotUniform()(shape, rng, dtype)


def he_uniform(shape, rng, dtype=np.float32):
    """Uniform on [-limit, limit] with limit = sqrt(6 / fan_in)."""
    return HeUniform()(shape, rng, dtype)


CLASSES = {cls.__name__: cls for cls in (
    VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal,
    Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal)}
# Keras's string names
NAMES = {"glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
         "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
         "zeros": Zeros, "ones": Ones, "random_uniform": RandomUniform, "random_normal": RandomNormal,
         "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling}
INITIALIZERS = NAMES


def get(identifier):
    """An initializer from a Keras name ('he_normal'), a Keras config dict
    ({'class_name': 'HeNormal', 'config': {}}) or an initializer object."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = NAMES.get(identifier) or CLASSES.get(identifier)
        if cls is None:
            raise InputError(f"unknown initializer {identifier!r}; known: {sorted(NAMES)}")
        return cls()
    if isinstance(identifier, dict) and isinstance(identifier.get("class_name"), str):
        cls = CLASSES.get(identifier["class_name"]) or NAMES.get(identifier["class_name"])
        if cls is None:
            raise InputError(f"unknown initializer {identifier['class_name']!r}; known: {sorted(CLASSES)}")
        config = identifier.get("config") or {}
        if not isinstance(config, dict):
            raise InputError(f"initializer config must be a dict, got {config!r}")
        for key in ("input_axes", "output_axes"):
            if config.get(key) is not None:
                raise InputError(f"initializer {identifier['class_name']}: {key}={config[key]!r} is not supported")
        config = {k: v for k, v in config.items() if k not in ("input_axes", "output_axes")
                  and not (k == "seed" and v is None)}
        try:
            return cls(**config)
        except TypeError as err:
            raise InputError(f"initializer {identifier['class_name']}: {err}") from None
    raise InputError(f"unknown initializer {identifier!r}; known: {sorted(NAMES)}")


def serialize(initializer):
    """A Keras name ('he_normal') for a built-in initializer with its default
    arguments, else ``{'class_name': ..., 'config': ...}``: the same for the
    same initializer, however it was given."""
    obj = get(initializer)
    config = obj.get_config()
    names = [name for name, cls in NAMES.items() if cls is type(obj)]
    if names and config == type(obj)().get_config():
        return names[0]
    return {"class_name": type(obj).__name__, "config": config}

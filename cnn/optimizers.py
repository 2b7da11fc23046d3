"""Optimizers, with the update equations and arguments of Keras 3 (``keras.optimizers``).

Each optimizer keeps its state (moments, accumulators) per trainable weight,
keyed by the layer's position in the model and the weight's name, and updates
the weight arrays in place. So an optimizer serves the one model it was
compiled with (as in Keras 3, where an optimizer built for one model's
variables refuses another's): compiling a second model with it is refused. One step, in Keras's order:

1. gradients clipped: ``clipnorm`` (each gradient's norm), else
   ``global_clipnorm`` (all together), else ``clipvalue`` (each entry);
2. weight decay, when ``weight_decay`` is set: ``w -= w * weight_decay * lr``;
3. the optimizer's own update with the current learning rate, a number or
   ``schedule(iterations)`` for a :class:`LearningRateSchedule`.

``get(name)`` gives Keras 3's defaults for every name but 'adadelta', which
gives the chapter's learning rate 1.0 (see :data:`NAMED`).
"""
import numpy as np

from kernels.optim import adadelta_update_numba

from .errors import InputError


# ------------------------------------------------------------ schedules
class LearningRateSchedule:
    """A learning rate that depends on the optimizer's step count:
    ``schedule(step) -> float``."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {}


class _Decay(LearningRateSchedule):
    """A schedule of ``p = step / decay_steps`` (floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate")
        if isinstance(decay_steps, bool) or not isinstance(decay_steps, (int, float)) or decay_steps <= 0:
            raise InputError(f"decay_steps must be a number > 0, got {decay_steps!r}")
        self.decay_steps = decay_steps
        self.decay_rate = _number(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self._rate(np.floor(p) if self.staircase else p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


class ExponentialDecay(_Decay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, as Keras."""

    def _rate(self, p):
        return self.initial_learning_rate * self.decay_rate ** p


class InverseTimeDecay(_Decay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``, as Keras."""

    def _rate(self, p):
        return self.initial_learning_rate / (1 + self.decay_rate * p)


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay)}


def _number(value, what, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < minimum:
        raise InputError(f"{what} must be a finite number >= {minimum}, got {value!r}")
    return float(value)


def _optional(value, what):
    return None if value is None else _number(value, what)


# ------------------------------------------------------------ the base class
class Optimizer:
    """Base class. ``step(layers)`` applies each layer's ``grads`` to its trainable weights."""

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **unknown):
        if unknown:
            raise InputError(f"{type(self).__name__}: unknown argument(s) {', '.join(sorted(unknown))}")
        if isinstance(learning_rate, dict) and learning_rate.get("class_name") in SCHEDULES:
            learning_rate = SCHEDULES[learning_rate["class_name"]](**learning_rate.get("config", {}))
        if isinstance(learning_rate, LearningRateSchedule):
            self.learning_rate = learning_rate
        elif callable(learning_rate):
            raise InputError("learning_rate: a plain callable is not supported; subclass "
                             "cnn.optimizers.LearningRateSchedule (its __call__ gets the step)")
        else:
            self.learning_rate = _number(learning_rate, "learning_rate")
        self.weight_decay = _optional(weight_decay, "weight_decay")
        self.clipnorm = _optional(clipnorm, "clipnorm")
        self.clipvalue = _optional(clipvalue, "clipvalue")
        self.global_clipnorm = _optional(global_clipnorm, "global_clipnorm")
        if sum(v is not None for v in (self.clipnorm, self.global_clipnorm)) > 1:
            raise InputError("give at most one of clipnorm and global_clipnorm, as in Keras")
        for arg, value, default in (("use_ema", use_ema, False), ("ema_overwrite_frequency", ema_overwrite_frequency, None),
                                    ("loss_scale_factor", loss_scale_factor, None),
                                    ("gradient_accumulation_steps", gradient_accumulation_steps, None)):
            if value != default:
                raise InputError(f"{type(self).__name__}: {arg}={value!r} is not supported by this engine")
        self.name = name
        self.iterations = 0
        self.state = {}
        self._model = None  # a weak reference to the model compiled with this optimizer

    def _bind(self, model):
        """Serve ``model`` from now on; refused when another model has a claim on this optimizer's state."""
        import weakref

        owner = self._model() if self._model is not None else None
        if owner is not None and owner is not model:
            raise InputError(
                f"this {type(self).__name__} optimizer is already compiled into model {owner.name!r}, and its "
                "state is keyed by that model's layers; give each model its own optimizer "
                f"(cnn.optimizers.{type(self).__name__}(**config) with config = optimizer.get_config(), "
                "or a name such as 'adam')")
        if owner is None and self._model is not None and (self.state or self.iterations):
            raise InputError(f"this {type(self).__name__} optimizer holds the state of a model that is gone; "
                             "give the new model an optimizer of its own")
        self._model = weakref.ref(model)

    def __getstate__(self):  # a copy (copy.deepcopy of a model) belongs to no model until compiled
        return {k: (None if k == "_model" else v) for k, v in self.__dict__.items()}

    @property
    def current_learning_rate(self):
        lr = self.learning_rate
        return float(lr(self.iterations)) if isinstance(lr, LearningRateSchedule) else lr

    def step(self, layers):
        targets = [((index, name), layer.params[name], layer.grads[name])
                   for index, layer in enumerate(layers) for name in layer.trainable_names]
        grads = self._clip([g for _, _, g in targets])
        lr = self.current_learning_rate
        for (key, param, _), grad in zip(targets, grads):
            if self.weight_decay:
                param -= param * (self.weight_decay * lr)
            self.update(key, param, grad, lr)
        self.iterations += 1

    def _clip(self, grads):
        if self.clipnorm:
            out = []
            for g in grads:
                norm = np.sqrt(np.square(g).sum())
                out.append(g * self.clipnorm / max(norm, self.clipnorm) if norm > 0 else g)
            return out
        if self.global_clipnorm:
            norm = np.sqrt(sum(float(np.square(g).sum()) for g in grads))
            scale = self.global_clipnorm * min(1 / norm if norm else np.inf, 1 / self.global_clipnorm)
            return [g * scale for g in grads]
        if self.clipvalue:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def slots(self, key, param, *names, initial=0.0):
        """The state arrays of one parameter, created on first use."""
        if key not in self.state:
            self.state[key] = {n: np.full_like(param, initial) for n in names}
        return self.state[key]

    def update(self, key, param, grad, lr):
        raise NotImplementedError

    def get_config(self):
        config = {k: v for k, v in vars(self).items() if k not in ("iterations", "state", "name", "_model")}
        if isinstance(self.learning_rate, LearningRateSchedule):
            config["learning_rate"] = {"class_name": type(self.learning_rate).__name__,
                                       "config": self.learning_rate.get_config()}
        return {"name": type(self).__name__, **config}


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    m = momentum * m - lr * g;  w += m   (Nesterov: w += momentum * m - lr * g)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = _number(momentum, "momentum")
        self.nesterov = bool(nesterov)

    def update(self, key, param, grad, lr):
        if self.momentum == 0:
            param -= lr * grad
            return
        m = self.slots(key, param, "m")["m"]
        m *= self.momentum
        m -= lr * grad
        if self.nesterov:
            param += self.momentum * m - lr * grad
        else:
            param += m


class RMSprop(Optimizer):
    """RMSprop: v = rho v + (1 - rho) g^2; increment = lr g / sqrt(v + eps);
    ``centered`` subtracts the square of the gradients' moving mean a from v;
    with ``momentum``, mom = momentum mom + increment and w -= mom, else w -= increment."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _number(rho, "rho")
        self.momentum = _number(momentum, "momentum")
        self.epsilon = _number(epsilon, "epsilon")
        self.centered = bool(centered)

    def update(self, key, param, grad, lr):
        names = ["v"] + (["mom"] if self.momentum > 0 else []) + (["a"] if self.centered else [])
        s = self.slots(key, param, *names)
        v = s["v"]
        v *= self.rho
        v += (1 - self.rho) * np.square(grad)
        if self.centered:
            s["a"] *= self.rho
            s["a"] += (1 - self.rho) * grad
            denominator = v - np.square(s["a"]) + self.epsilon
        else:
            denominator = v + self.epsilon
        increment = lr * grad / np.sqrt(denominator)
        if self.momentum > 0:
            s["mom"] *= self.momentum
            s["mom"] += increment
            param -= s["mom"]
        else:
            param -= increment


class Adagrad(Optimizer):
    """Adagrad: a += g^2 (a starts at 0.1);  w -= lr g / sqrt(a + eps)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _number(initial_accumulator_value, "initial_accumulator_value")
        self.epsilon = _number(epsilon, "epsilon")

    def update(self, key, param, grad, lr):
        a = self.slots(key, param, "a", initial=self.initial_accumulator_value)["a"]
        a += np.square(grad)
        param -= lr * grad / np.sqrt(a + self.epsilon)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012) as Keras computes it::

        Eg  = rho Eg + (1 - rho) g^2
        d   = -sqrt(Edx + eps) / sqrt(Eg + eps) * g
        Edx = rho Edx + (1 - rho) d^2
        w  += lr * d

    The defaults here are Keras 3's (lr 0.001). The chapter's ``'adadelta'``
    string meant lr 1.0, rho 0.95, eps 1e-7 in the Keras of its day, and
    ``get('adadelta')`` gives exactly that: with lr 0.001 the chapter's model
    barely trains in 50 epochs.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _number(rho, "rho")
        self.epsilon = _number(epsilon, "epsilon")

    def update(self, key, param, grad, lr):
        s = self.slots(key, param, "Eg", "Edx")
        # the equations above, fused in one compiled pass (kernels/optim.py has the NumPy twin)
        adadelta_update_numba(param, np.ascontiguousarray(grad, dtype=param.dtype), s["Eg"], s["Edx"],
                              lr, self.rho, self.epsilon)


class Adam(Optimizer):
    """Adam, in Keras's form::

        m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2)
        (amsgrad: v_hat = max(v_hat, v), used in place of v below)
        w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _number(beta_1, "beta_1")
        self.beta_2 = _number(beta_2, "beta_2")
        self.epsilon = _number(epsilon, "epsilon")
        self.amsgrad = bool(amsgrad)

    def update(self, key, param, grad, lr):
        s = self.slots(key, param, "m", "v", *(["v_hat"] if self.amsgrad else []))
        t = self.iterations + 1
        alpha = lr * np.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        s["m"] += (grad - s["m"]) * (1 - self.beta_1)
        s["v"] += (np.square(grad) - s["v"]) * (1 - self.beta_2)
        v = s["v"]
        if self.amsgrad:
            np.maximum(s["v_hat"], v, out=s["v_hat"])
            v = s["v_hat"]
        param -= alpha * s["m"] / (np.sqrt(v) + self.epsilon)


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default ``weight_decay=0.004``)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        if weight_decay is None:
            raise InputError("AdamW needs a weight_decay (a number >= 0)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


OPTIMIZERS = {cls.__name__: cls for cls in (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW)}

# What a bare string means. Keras 3's defaults, except 'adadelta', which keeps
# the learning rate 1.0 that the string meant in the chapter's Keras.
NAMED = {
    "sgd": (SGD, {}),
    "rmsprop": (RMSprop, {}),
    "adagrad": (Adagrad, {}),
    "adadelta": (Adadelta, {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
}


def get(optimizer):
    """An optimizer from a name (see :data:`NAMED`), a config dict or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer.lower() not in NAMED:
            raise InputError(f"unknown optimizer {optimizer!r}; known: {sorted(NAMED)}")
        cls, kwargs = NAMED[optimizer.lower()]
        return cls(**kwargs)
    if isinstance(optimizer, dict) and optimizer.get("name") in OPTIMIZERS:
        config = dict(optimizer)
        cls = OPTIMIZERS[config.pop("name")]
        try:
            return cls(**config)
        except TypeError as err:
            raise InputError(f"optimizer {cls.__name__}: {err}") from None
    raise InputError(f"optimizer must be a name, a config or an Optimizer, got {optimizer!r}")

"""What the explorer's API computes, apart from HTTP: every number from the engine.

Each request takes one snapshot of the model (``self.model`` read once,
under the lock) and uses it throughout, so a training run that swaps the
model in meanwhile cannot give a request the layers of one model and the
outputs of another. Forward passes run under the lock: the layers keep
caches for their backward pass, so two requests must not run one model at
once. Training runs on its own model in a background thread and takes the
lock only to swap the trained model in when it ends. The training state
(its history above all) is changed and copied under a second lock, and a
run is started only after checking, under that lock, that none is going on.
"""
import copy
import threading

import numpy as np

from ..images import bright_ink, mnist_style
from ..layers import Concatenate, Conv2D, Dropout, MaxPooling2D
from ..layers.merging import _Merge
from .backward import window_offsets
from kernels.geometry import window_geometry

MAX_SIDE = 1024  # a drawing's canvas, per side
SAMPLES = 50     # test images offered by the picker


class ApiError(Exception):
    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _int(body, key, low, high):
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(f"{key!r} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _round(array, digits=4):
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


MAX_INPUT_SIDE = 512  # a model's image input, per side, that the page draws


def image_shape(model):
    """(height, width, channels) of a model the explorer can take: one image input of 1 or 3 channels."""
    from ..errors import InputError

    shape = model.input_shape
    if not shape or isinstance(shape[0], (tuple, list)) or len(shape) != 3 or shape[2] not in (1, 3) \
            or not all(2 <= side <= MAX_INPUT_SIDE for side in shape[:2]):
        raise InputError(f"the explorer takes a model with one image input, (height, width, 1 or 3 channels) "
                         f"with sides up to {MAX_INPUT_SIDE}; {model.name!r} takes {shape}")
    return tuple(int(v) for v in shape)


def fit_to(image, shape):
    """A 0-255 image (h, w) or (h, w, 3) as a model of ``shape`` takes it: resized (bilinear) and with the
    model's channels (a gray image repeated, a colour one averaged); returns (image, notes)."""
    from PIL import Image

    height, width, channels = shape
    notes = []
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and channels == 1:
        image, notes = image.mean(axis=2), notes + ["colours averaged to gray"]
    if image.shape[:2] != (height, width):
        planes = [image] if image.ndim == 2 else [image[:, :, k] for k in range(image.shape[2])]
        planes = [np.asarray(Image.fromarray(p.astype(np.float32), mode="F").resize((width, height),
                                                                                  Image.Resampling.BILINEAR))
                  for p in planes]
        image = planes[0] if len(planes) == 1 else np.stack(planes, axis=2)
        notes.append(f"resized to {height}x{width}, the model's input")
    if image.ndim == 2 and channels == 3:
        image, notes = np.repeat(image[:, :, None], 3, axis=2), notes + ["gray repeated on 3 channels"]
    return np.clip(np.round(image), 0, 255).astype(np.uint8), notes


class Explorer:
    def __init__(self, model, data=None):
        from ..data import load_mnist_split

        image_shape(model)  # refused by name: a model the page cannot feed
        self.model = model
        self.lock = threading.Lock()           # the model: its swap and its forward passes
        self.state_lock = threading.Lock()     # self.training and what it holds
        self.x_test, self.labels = load_mnist_split(data, "test", SAMPLES)
        self.data = data
        self.training = None  # the state of a training run, see _train

    # ---------------------------------------------------------------- dispatch
    def get(self, route):
        if route == "model":
            return self.describe()
        if route == "samples":
            return {"count": len(self.labels), "labels": [int(v) for v in self.labels]}
        if route.startswith("samples/"):
            index = route.split("/", 1)[1]
            if not (index.isascii() and index.isdigit()) or int(index) >= len(self.labels):
                raise ApiError(f"no test image {index!r}; there are {len(self.labels)}", 404)
            return {"label": int(self.labels[int(index)]),
                    "pixels": np.round(self.x_test[int(index), :, :, 0] * 255).astype(int).tolist()}
        if route == "train":
            return self.train_status()
        raise ApiError(f"no API call {route!r}", 404)

    def post(self, route, body):
        handlers = {"predict": self.predict, "explain": self.explain, "geometry": self.geometry,
                    "train": self.start_training, "train/stop": self.stop_training,
                    "backward": self.backward, "gradient": self.gradient, "input_gradient": self.input_gradient,
                    "dense": self.dense, "step": self.step}
        if route not in handlers:
            raise ApiError(f"no API call {route!r}", 404)
        return handlers[route](body)

    # ---------------------------------------------------------------- the model
    def snapshot(self):
        """The model this request is about (the one being served when it came in)."""
        with self.lock:
            return self.model

    def describe(self):
        model = self.snapshot()
        sources = model.producers()  # which layers each reads (-1: the input): a chain or a graph
        layers = []
        for index, layer in enumerate(model.layers):
            entry = {"index": index, "name": layer.name, "type": type(layer).__name__,
                     "output_shape": list(layer.output_shape), "inputs": sources[index]}
            if isinstance(layer, Conv2D):
                entry.update(kernel_size=list(layer.kernel_size), strides=list(layer.strides), padding=layer.padding,
                             dilation_rate=list(layer.dilation_rate), activation=layer.activation)
            if isinstance(layer, MaxPooling2D):
                entry.update(pool_size=list(layer.pool_size), strides=list(layer.strides), padding=layer.padding)
            layers.append(entry)
        return {"name": model.name, "input_shape": list(model.input_shape), "layers": layers,
                "parameters": model.count_params()}

    def _input(self, body, shape):
        """The image a request is about, as the model takes it: a drawing (MNIST's preparation), a photo
        (resized; for a gray model also MNIST's preparation) or a test digit; with what was done to it."""
        if "sample" in body:
            index = _int(body, "sample", 0, len(self.labels) - 1)
            digit = np.round(self.x_test[index, :, :, 0] * 255)
            image, notes = fit_to(digit, shape)
            return image, [f"test image {index}"] + notes
        image = body.get("image")
        if not isinstance(image, dict):
            raise ApiError("give 'image': {'width', 'height', 'pixels'} (a drawing) or 'sample': N (a test image)")
        width, height = _int(image, "width", 1, MAX_SIDE), _int(image, "height", 1, MAX_SIDE)
        channels = _int(image, "channels", 1, 3) if "channels" in image else 1
        if channels == 2:
            raise ApiError("'channels' must be 1 (gray) or 3 (red, green, blue)")
        pixels = image.get("pixels")
        if not isinstance(pixels, list) or len(pixels) != width * height * channels:
            raise ApiError(f"'pixels' must list width x height{' x 3' if channels == 3 else ''} = "
                           f"{width * height * channels} {'gray ' if channels == 1 else ''}values, "
                           f"got {len(pixels) if isinstance(pixels, list) else type(pixels).__name__}")
        try:
            values = np.array(pixels, dtype=np.float64).reshape((height, width) if channels == 1 else
                                                                (height, width, 3))
        except (TypeError, ValueError):
            raise ApiError("'pixels' must be numbers from 0 to 255") from None
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
            raise ApiError("'pixels' must be finite numbers from 0 to 255")
        if channels == 3 and shape[2] == 3:  # a photo for a colour model: resized, nothing else
            return fit_to(values, shape)
        gray = values if channels == 1 else values.mean(axis=2)
        digit, notes = mnist_style(*bright_ink(gray / 255, ["colours averaged to gray"] if channels == 3 else []))
        image, more = fit_to(digit, shape)  # the same preparation as `cnn predict`
        return image, notes + more

    def _x(self, model, image):
        """The batch of one the model reads: the 0-255 image scaled to [0, 1], in the model's dtype."""
        height, width, channels = image_shape(model)
        return (np.asarray(image, dtype=np.float64) / 255).reshape(1, height, width, channels).astype(model.dtype)

    def _forward(self, model, image):
        """The input, and each layer's call on it: (layer, inputs, output), a chain or a graph."""
        x = self._x(model, image)
        with self.lock:
            calls = model.trace(x)
        return x, calls

    def predict(self, body):
        model = self.snapshot()
        image, notes = self._input(body, image_shape(model))
        x, calls = self._forward(model, image)
        probs = calls[-1][2][0]
        layers = []
        for index, (layer, _, out) in enumerate(calls):
            if out.ndim != 4:
                continue
            maps = out[0].transpose(2, 0, 1)  # channels first, for drawing
            layers.append({"index": index, "name": layer.name, "type": type(layer).__name__,
                           "shape": list(out.shape[1:]), "min": float(maps.min()), "max": float(maps.max()),
                           "note": "dropout is the identity at inference" if isinstance(layer, Dropout) else None,
                           "maps": _round(maps)})
        return {"input": image.astype(int).tolist(), "notes": notes, "probabilities": _round(probs, 6),
                "prediction": int(np.argmax(probs)), "layers": layers}

    # ---------------------------------------------------------------- one cell
    def _given_input(self, body, model):
        """The image (0-255) a request names: the one /api/predict returned for this model."""
        height, width, channels = image_shape(model)
        want = (height, width) if channels == 1 else (height, width, channels)
        raw = body.get("input")
        try:
            image = np.array(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ApiError(f"'input' must be the {'x'.join(map(str, want))} image /api/predict returned") from None
        if image.shape != want or not np.isfinite(image).all() or image.min() < 0 or image.max() > 255:
            raise ApiError(f"'input' must be {'x'.join(map(str, want))} numbers from 0 to 255, got shape "
                           f"{image.shape}")
        return image

    def explain(self, body):
        model = self.snapshot()
        image = self._given_input(body, model)
        index = _int(body, "layer", 0, len(model.layers) - 1)
        layer = model.layers[index]
        if isinstance(layer, _Merge) and len(layer.output_shape) == 3:
            return self._explain_merge(model, index, image, body)
        if not isinstance(layer, (Conv2D, MaxPooling2D)):
            raise ApiError(f"layer {index} ({type(layer).__name__}) has no windows to explain; "
                           "choose a Conv2D, MaxPooling2D or merge layer")
        oh, ow, channels = layer.output_shape
        row, col = _int(body, "row", 0, oh - 1), _int(body, "col", 0, ow - 1)
        channel = _int(body, "channel", 0, channels - 1)
        x, calls = self._forward(model, image)
        below = calls[index][1][0][0]  # the tensor that fed this layer (in a graph, not always the layer before)
        source = model.producers()[index][0]  # its layer's index, -1 for the input
        engine = float(calls[index][2][0, row, col, channel])
        h, w, cin = below.shape
        kh, kw, sh, sw, dh, dw, pt, pl = window_offsets(layer, h, w)
        ys = [row * sh - pt + a * dh for a in range(kh)]
        xs = [col * sw - pl + b * dw for b in range(kw)]
        inside = [[0 <= y < h and 0 <= x_ < w for x_ in xs] for y in ys]
        receptive = {"layer": source, "rows": [min(ys), max(ys)], "cols": [min(xs), max(xs)],
                     "height": h, "width": w}
        if isinstance(layer, MaxPooling2D):
            window = np.array([[below[y, x_, channel] if ok else -np.inf for x_, ok in zip(xs, oks)]
                               for y, oks in zip(ys, inside)])
            a, b = np.unravel_index(int(np.argmax(window)), window.shape)  # the first maximum, as the kernel
            return {"kind": "max", "layer": index, "name": layer.name, "cell": [row, col, channel],
                    "window": _round(np.where(np.isfinite(window), window, 0)), "inside": inside,
                    "winner": [int(a), int(b)], "value": float(window[a, b]), "engine": engine,
                    "equal": bool(np.isclose(window[a, b], engine, rtol=1e-5, atol=1e-6)), "receptive": receptive}
        kernel = layer.params["kernel"][:, :, :, channel].astype(np.float64)
        if layer.groups > 1:  # a grouped convolution's filter reads its own group of channels only
            group = channel // (layer.filters // layer.groups)
            cin = kernel.shape[2]
            below = below[:, :, group * cin:(group + 1) * cin]
        window = np.zeros((kh, kw, cin))
        for i, (y, oks) in enumerate(zip(ys, inside)):
            for j, (x_, ok) in enumerate(zip(xs, oks)):
                if ok:
                    window[i, j] = below[y, x_]
        products = window * kernel
        total = float(products.sum())
        bias = float(layer.params["bias"][channel]) if layer.use_bias else 0.0
        pre = total + bias
        activated = float(layer.activation_fn.forward(np.array([pre]))[0])
        return {"kind": "conv", "layer": index, "name": layer.name, "cell": [row, col, channel],
                "window": _round(window.transpose(2, 0, 1), 6), "weights": _round(kernel.transpose(2, 0, 1), 6),
                "products": _round(products.transpose(2, 0, 1), 6), "inside": inside, "sum": total, "bias": bias,
                "pre_activation": pre, "activation": layer.activation, "value": activated, "engine": engine,
                "equal": bool(np.isclose(activated, engine, rtol=1e-4, atol=1e-5)), "receptive": receptive}

    def _explain_merge(self, model, index, image, body):
        """A merge layer's cell: the cells of its inputs it was made from, and the
        operation on them (a sum, a difference, a product, a mean, an extreme),
        or, for a concatenation, the one input channel it is a copy of."""
        layer = model.layers[index]
        oh, ow, channels = layer.output_shape
        row, col = _int(body, "row", 0, oh - 1), _int(body, "col", 0, ow - 1)
        channel = _int(body, "channel", 0, channels - 1)
        _, calls = self._forward(model, image)
        ins, out = calls[index][1], calls[index][2]
        engine = float(out[0, row, col, channel])
        sources = model.producers()[index]
        names = [model.layers[j].name if j >= 0 else "input" for j in sources]
        kind = type(layer).__name__
        if isinstance(layer, Concatenate):
            axis = layer.axis % 4
            if axis != 3:
                raise ApiError(f"layer {index} concatenates along axis {layer.axis}; the explorer explains "
                               "concatenations of channels (axis -1)")
            offset = 0
            for j, x in enumerate(ins):
                if channel < offset + x.shape[3]:
                    value = float(x[0, row, col, channel - offset])
                    return {"kind": "merge", "op": kind, "layer": index, "name": layer.name,
                            "cell": [row, col, channel],
                            "inputs": [{"layer": sources[j], "name": names[j], "cell": [row, col, channel - offset],
                                        "value": value}],
                            "value": value, "engine": engine, "equal": value == engine}
                offset += x.shape[3]
        cells = []
        for j, x in enumerate(ins):  # a (1, 1, C) input (squeeze-excite) is broadcast: its cell is (0, 0, c)
            r, c = (row if x.shape[1] > 1 else 0), (col if x.shape[2] > 1 else 0)
            ch = channel if x.shape[3] > 1 else 0
            cells.append({"layer": sources[j], "name": names[j], "cell": [r, c, ch], "value": float(x[0, r, c, ch])})
        values = np.array([cell["value"] for cell in cells], dtype=np.float64)
        value = float({"Add": np.sum, "Multiply": np.prod, "Average": np.mean, "Maximum": np.max,
                       "Minimum": np.min}.get(kind, lambda v: v[0] - v[1])(values))
        return {"kind": "merge", "op": kind, "layer": index, "name": layer.name, "cell": [row, col, channel],
                "inputs": cells, "value": value, "engine": engine,
                "equal": bool(np.isclose(value, engine, rtol=1e-5, atol=1e-6))}

    # ---------------------------------------------------------------- the backward pass
    def _record(self, body):
        """The model of this request and its backward pass for the image and label the body gives."""
        from . import backward

        model = self.snapshot()
        image = self._given_input(body, model)
        if model.loss is None:
            raise ApiError("the model has no loss to differentiate: it was saved uncompiled (compile it and "
                           "save it again)")
        label = _int(body, "label", 0, model.output_shape[-1] - 1)
        x = self._x(model, image)
        with self.lock:  # the copy is taken while no other request runs the model; the work is on the copy
            mine = copy.deepcopy(model)
        try:
            return model, backward.run(mine, x, label), label
        except ValueError as err:
            raise ApiError(str(err)) from None

    def backward(self, body):
        model, record, label = self._record(body)
        layers = []
        for index, (layer, _, out) in enumerate(record.calls):
            grad = record.out.get(layer.name)
            if out.ndim != 4 or grad is None:
                continue
            maps = grad[0].transpose(2, 0, 1)
            layers.append({"index": index, "name": layer.name, "type": type(layer).__name__,
                           "shape": list(out.shape[1:]), "limit": float(np.abs(maps).max()), "grads": _round(maps, 7)})
        first = record.dx.get(model.layers[0].name)
        probs = record.calls[-1][2][0]
        dense = [{"index": i, "name": layer.name, "units": int(layer.units)}
                 for i, layer in enumerate(model.layers) if type(layer).__name__ == "Dense"]
        return {"label": label, "loss": float(record.loss), "probabilities": _round(probs, 6),
                "prediction": int(np.argmax(probs)), "layers": layers, "dense": dense,
                "input_gradient": None if first is None else _round(first[0].transpose(2, 0, 1), 7),
                "input_limit": None if first is None else float(np.abs(first).max()),
                "weights": [{"index": i, "name": layer.name, "type": type(layer).__name__,
                             "weights": {name: list(layer.params[name].shape) for name in layer.trainable_names}}
                            for i, layer in enumerate(model.layers) if layer.trainable_names]}

    def _layer_index(self, model, body):
        return _int(body, "layer", 0, len(model.layers) - 1)

    def gradient(self, body):
        from . import backward

        model, record, _ = self._record(body)
        index = self._layer_index(model, body)
        weight = body.get("weight")
        position = body.get("index")
        if not isinstance(weight, str) or not isinstance(position, list) or not all(
                isinstance(p, int) and not isinstance(p, bool) for p in position):
            raise ApiError("give 'weight' (a weight's name, e.g. 'kernel') and 'index' (its position, a list of "
                           "whole numbers)")
        try:
            return backward.weight_gradient(record, index, weight, position)
        except ValueError as err:
            raise ApiError(str(err)) from None

    def input_gradient(self, body):
        from . import backward

        model, record, _ = self._record(body)
        index = self._layer_index(model, body)
        row, col, channel = (_int(body, key, 0, 4096) for key in ("row", "col", "channel"))
        try:
            return backward.input_gradient(record, index, row, col, channel)
        except ValueError as err:
            raise ApiError(str(err)) from None

    def dense(self, body):
        """A dense unit's value: the sum of weight times input (the largest terms), plus the bias, then
        the activation (a softmax with its numbers); for an input that a Flatten made, the map cell it is."""
        model = self.snapshot()
        image = self._given_input(body, model)
        index = self._layer_index(model, body)
        layer = model.layers[index]
        if type(layer).__name__ != "Dense":
            raise ApiError(f"layer {index} ({type(layer).__name__}) is not a Dense layer")
        unit = _int(body, "unit", 0, layer.units - 1)
        _, calls = self._forward(model, image)
        x = calls[index][1][0][0].astype(np.float64)
        out = calls[index][2][0]
        source = model.producers()[index][0]
        flat = source >= 0 and type(model.layers[source]).__name__ == "Flatten"
        shape = calls[source][1][0].shape[1:] if flat else None  # what the Flatten read: (h, w, c)
        kernel = layer.params["kernel"][:, unit].astype(np.float64)
        products = x * kernel
        order = np.argsort(-np.abs(products))[:8]
        terms = []
        for k in order:
            term = {"input": int(k), "x": float(x[k]), "w": float(kernel[k]), "product": float(products[k])}
            if flat:
                term["from"] = [int(v) for v in np.unravel_index(int(k), shape)]  # the engine's (h, w, c) order
            terms.append(term)
        bias = float(layer.params["bias"][unit]) if layer.use_bias else 0.0
        z = float(products.sum()) + bias
        answer = {"kind": "dense", "layer": index, "name": layer.name, "unit": unit, "count": int(x.size),
                  "terms": terms, "sum": float(products.sum()), "bias": bias, "z": z, "activation": layer.activation,
                  "value": float(out[unit]), "flattened_from": None if shape is None else list(shape)}
        if layer.activation == "softmax":
            logits = x @ layer.params["kernel"].astype(np.float64) + (
                layer.params["bias"].astype(np.float64) if layer.use_bias else 0.0)
            shifted = np.exp(logits - logits.max())
            answer["softmax"] = {"logits": _round(logits, 6), "max": float(logits.max()),
                                 "exp": _round(shifted, 6), "total": float(shifted.sum()),
                                 "value": float(shifted[unit] / shifted.sum())}
            value = answer["softmax"]["value"]
        else:
            value = float(layer.activation_fn(np.array([z]))[0])
        answer["computed"] = value
        answer["equal"] = bool(np.isclose(value, float(out[unit]), rtol=1e-4, atol=1e-6))
        return answer

    def step(self, body):
        """One step of the model's own optimizer on this image (train_on_batch, as fit takes it: training
        mode), the clicked weight before and after with the update rule's numbers; the stepped model is
        then the one served."""
        from . import backward

        model = self.snapshot()
        image = self._given_input(body, model)
        if model.loss is None or model.optimizer is None:
            raise ApiError("the model is not compiled: it has no optimizer to step")
        index = self._layer_index(model, body)
        layer = model.layers[index]
        weight, position = body.get("weight"), body.get("index")
        if weight not in layer.trainable_names or not isinstance(position, list) or len(position) != \
                layer.params[weight].ndim or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < n
                                                     for p, n in zip(position, layer.params[weight].shape)):
            raise ApiError(f"give 'weight' (one of {layer.trainable_names}) and 'index' inside its shape "
                           f"{list(layer.params.get(weight, np.zeros(0)).shape) if weight in layer.params else ''}")
        label = _int(body, "label", 0, model.output_shape[-1] - 1)
        x = self._x(model, image)
        y = backward.targets(model, label, model.output_shape[-1])
        position = tuple(position)
        with self.lock:
            if self.model is not model:
                raise ApiError("the model changed while this request came in; ask again", 409)
            stepped = copy.deepcopy(model)
            stepped.optimizer._bind(stepped)  # the copy owns its copy of the optimizer state
            before = float(layer.params[weight][position])
            key = (index, weight)
            slots = {name: float(v[position]) for name, v in model.optimizer.state.get(key, {}).items()}
            iterations, lr = stepped.optimizer.iterations, stepped.optimizer.current_learning_rate
            loss_before = float(stepped.compute_loss(x, y, training=False))
            stepped.train_on_batch(x, y)
            grad = float(stepped.layers[index].grads[weight][position])
            after = float(stepped.layers[index].params[weight][position])
            self.model = stepped
        optimizer = stepped.optimizer
        plain = not (optimizer.weight_decay or optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue
                     or stepped.layers[index]._regularizers)
        lines, computed = backward.step_rule(optimizer, before, slots, grad, lr, iterations) if plain else (None, None)
        probs = stepped.predict(x)[0]
        return {"kind": "step", "layer": index, "name": layer.name, "weight": weight, "index": list(position),
                "optimizer": type(optimizer).__name__, "learning_rate": lr, "iteration": iterations + 1,
                "before": before, "gradient": grad, "slots_before": slots, "after": after, "rule": lines,
                "computed": computed, "equal": None if computed is None else bool(
                    np.isclose(computed, after, rtol=1e-5, atol=1e-8)),
                "loss_before": loss_before, "loss_after": float(stepped.compute_loss(x, y, training=False)),
                "probabilities": _round(probs, 6), "prediction": int(np.argmax(probs)),
                "note": "a training step: dropout is on (its mask from the model's seeded generator), as in fit"}

    # ---------------------------------------------------------------- arithmetic
    def geometry(self, body):
        size = _int(body, "size", 1, 64)
        kernel = _int(body, "kernel", 1, 16)
        stride = _int(body, "stride", 1, 16)
        dilation = _int(body, "dilation", 1, 8)
        padding = body.get("padding")
        if padding not in ("same", "valid"):
            raise ApiError(f"'padding' must be 'same' or 'valid', got {padding!r}")
        span = (kernel - 1) * dilation + 1
        try:
            out, before, after = window_geometry(size, span, stride, padding)  # the engine's (Keras's) rule
        except ValueError as err:
            raise ApiError(str(err)) from None
        return {"output": out, "pad_before": before, "pad_after": after, "span": span,
                "windows": [[i * stride - before + a * dilation for a in range(kernel)] for i in range(out)]}

    # ---------------------------------------------------------------- training
    def start_training(self, body):
        from ..architectures import ARCHITECTURES

        arch = body.get("arch", "chapter")
        if arch not in ("chapter", "lenet5", "small"):
            raise ApiError(f"'arch' must be 'chapter', 'lenet5' or 'small', got {arch!r}")
        epochs = _int(body, "epochs", 1, 50) if "epochs" in body else 5
        n_train = _int(body, "n_train", 100, 4500) if "n_train" in body else 1000
        with self.state_lock:  # the check and the start as one step: two requests cannot both start
            if self.training is not None and self.training["running"]:
                raise ApiError("a training run is going on; stop it first", 409)
            state = {"running": True, "arch": arch, "epoch": 0, "epochs": epochs, "history": {}, "filters": None,
                     "error": None, "stop": threading.Event()}
            self.training = state
            thread = threading.Thread(target=self._train, args=(ARCHITECTURES[arch], state, n_train), daemon=True)
            thread.start()
        return {"started": True, "arch": arch, "epochs": epochs}

    def _train(self, build, state, n_train):
        from ..callbacks import Callback
        from ..data import load_mnist_split
        from ..losses import SparseCategoricalCrossentropy

        explorer = self

        class Progress(Callback):
            def on_batch_end(self, batch, logs=None):
                if state["stop"].is_set():
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                filters = explorer._filters(self.model)
                with explorer.state_lock:
                    for key, value in (logs or {}).items():
                        state["history"].setdefault(key, []).append(float(value))
                    state["epoch"] = epoch + 1
                    state["filters"] = filters
                if state["stop"].is_set():
                    self.model.stop_training = True

        try:
            x, labels = load_mnist_split(self.data, "train", n_train)
            model = build()
            y = labels.astype(np.int64) if isinstance(model.loss, SparseCategoricalCrossentropy) \
                else np.eye(10, dtype=np.float32)[labels]
            model.fit(x, y, batch_size=128, epochs=state["epochs"], validation_split=0.1, verbose=0,
                      callbacks=[Progress()])
            with self.lock:
                self.model = model  # the page now explores what was trained
        except Exception as err:  # noqa: BLE001 - reported to the page, the server keeps serving
            with self.state_lock:
                state["error"] = f"{type(err).__name__}: {err}"
        finally:
            with self.state_lock:
                state["running"] = False

    def _filters(self, model):
        convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
        if not convs:
            return None
        kernel = convs[0].params["kernel"][:, :, 0, :]
        return {"layer": convs[0].name, "filters": _round(kernel.transpose(2, 0, 1)),
                "limit": float(np.abs(kernel).max())}

    def stop_training(self, body):
        with self.state_lock:
            if self.training is None or not self.training["running"]:
                raise ApiError("no training run is going on", 409)
            self.training["stop"].set()
        return {"stopping": True}

    def train_status(self):
        with self.state_lock:
            state = self.training
            if state is not None:  # copied whole while the trainer cannot append to it
                return {k: copy.deepcopy(v) for k, v in state.items() if k != "stop"}
        return {"running": False, "epoch": 0, "epochs": 0, "history": {}, "filters": self._filters(self.snapshot()),
                "error": None}

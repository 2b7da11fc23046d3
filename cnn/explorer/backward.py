"""The explorer's backward pass: what each gradient is a sum of, with the engine's numbers beside it.

:func:`run` takes one image and a label through a copy of the model (the
served model's caches are left alone) and records, for every layer, what its
backward pass received and sent back: dL/d(output), dL/d(pre-activation)
for a layer with weights, and dL/d(input). The explanations below rebuild
one number from those records and the forward values, term by term, and
put the engine's own value (``compute_gradients``, the layer's backward)
beside it:

* a convolution's weight gradient: the sum over output positions of the
  input value under that weight times dL/dz there;
* a convolution's input gradient (col2im): the sum, over the windows that
  cover the cell, of the weight that met it times dL/dz of the window;
* max-pooling's input gradient: dL/dout of each window the cell won;
* a dense weight's gradient: the one product input x dL/dz;
* one optimizer step on a weight: the update rule with its numbers.
"""
import copy

import numpy as np

from kernels.geometry import window_geometry

from ..layers import Conv2D, Dense, MaxPooling2D

TOP = 8  # the largest terms listed


class Record:
    """One backward pass: the forward values and, by layer name, what flowed back."""

    def __init__(self, model, calls, loss, grads):
        self.model, self.calls, self.loss, self.grads = model, calls, loss, grads
        self.out, self.dz, self.dx = {}, {}, {}


def targets(model, label, classes):
    """The label as the model's loss takes it (an integer or a one-hot row), for a batch of one."""
    from ..losses import SparseCategoricalCrossentropy

    if isinstance(model.loss, SparseCategoricalCrossentropy):
        return np.array([label])
    return np.eye(classes, dtype=np.float32)[[label]]


def run(model, x, label):
    """The backward pass of ``label`` for the image batch ``x`` (one image), on a copy of ``model``."""
    model = copy.deepcopy(model)
    record = Record(model, None, None, None)
    for layer in model.layers:
        _wrap(layer, record)
    y = targets(model, label, model.output_shape[-1])
    record.calls = model.trace(x)
    record.loss, record.grads = model.compute_gradients(x, y, training=False)
    first = model.layers[0]  # the data's own gradient, which training never needs
    if first.name in record.out:
        first.needs_input_gradient = True
        record.dx[first.name] = first.backward(record.out[first.name])
    return record


def _wrap(layer, record):
    """Record what ``layer``'s backward pass receives and returns, whichever path the model takes."""
    name = layer.name
    if hasattr(layer, "backward_from_logits"):
        inner = layer.backward_from_logits

        def from_logits(dz):
            record.dz[name] = dz
            dx = inner(dz)
            record.dx[name] = dx
            return dx

        layer.backward_from_logits = from_logits
    plain = layer.backward

    def backward(dout):
        record.out[name] = dout
        dx = plain(dout)
        record.dx[name] = dx
        if hasattr(layer, "activation_fn") and name not in record.dz:  # a convolution's own chunked pass
            record.dz[name] = _pre_activation_grad(layer, dout, record)
        return dx

    layer.backward = backward
    if hasattr(layer, "backward_through_maxpool"):
        fused = layer.backward_through_maxpool

        def through_pool(dpool, pool):
            record.out[pool.name] = dpool
            dout = pool.backward(dpool)  # what the fused pass never writes out: the pool's input gradient
            record.dx[pool.name] = dout
            record.out[name] = dout
            record.dz[name] = _pre_activation_grad(layer, dout, record)
            dx = fused(dpool, pool)
            record.dx[name] = dx
            return dx

        layer.backward_through_maxpool = through_pool


def _pre_activation_grad(layer, dout, record):
    """dL/dz of a layer with an activation, from dL/d(output) and the output the forward pass recorded
    (the fused convolution keeps no activation cache of its own)."""
    out = next(o for l, _, o in record.calls if l is layer)
    if layer.activation == "relu":
        return dout * (out > 0)
    if layer.activation == "linear":
        return dout
    if layer.activation_fn.needs_input:
        raise ValueError(f"layer {layer.name!r}: the gradient through {layer.activation} needs its input, which "
                         "the fused pass does not keep")
    return layer.activation_fn.backward(dout, out, None)


def _layer(record, index):
    layer = record.model.layers[index]
    _, ins, out = record.calls[index]
    return layer, ins[0][0], out[0]


def window_offsets(layer, h, w):
    """A Conv2D's or a pool's window over (h, w) inputs: (kh, kw, sh, sw, dh, dw, pad_top, pad_left)."""
    if isinstance(layer, Conv2D):
        (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate
    else:
        (kh, kw), (sh, sw), (dh, dw) = layer.pool_size, layer.strides, (1, 1)
    _, pt, _ = window_geometry(h, (kh - 1) * dh + 1, sh, layer.padding)
    _, pl, _ = window_geometry(w, (kw - 1) * dw + 1, sw, layer.padding)
    return kh, kw, sh, sw, dh, dw, pt, pl


def _top(terms):
    terms.sort(key=lambda t: -abs(t["product"]))
    return terms[:TOP]


# ---------------------------------------------------------------- explanations
def weight_gradient(record, index, weight, position):
    """dL/dW of one weight of layer ``index`` as the sum of its terms."""
    layer, below, _ = _layer(record, index)
    engine_all = record.grads.get((layer.name, weight))
    if engine_all is None:
        raise ValueError(f"layer {layer.name!r} has no trainable weight {weight!r}")
    position = tuple(position)
    if len(position) != engine_all.ndim or any(not 0 <= p < s for p, s in zip(position, engine_all.shape)):
        raise ValueError(f"{weight} has shape {list(engine_all.shape)}; {list(position)} is outside it")
    engine = float(engine_all[position])
    if type(layer).__name__ == "BatchNormalization":
        return _batch_norm_gradient(record, index, layer, below, weight, position, engine)
    dz = record.dz[layer.name][0]
    terms = []
    if weight == "bias":
        f = position[0]
        cells = list(np.ndindex(dz.shape[:-1]))
        terms = [{"at": list(cell), "input": 1.0, "grad": float(dz[cell + (f,)]), "product": float(dz[cell + (f,)])}
                 for cell in cells]
        total = float(sum(t["product"] for t in terms))
        rule = "the sum of dL/dz over every output position of its channel (the bias is added at each)"
    elif isinstance(layer, Dense):
        k, u = position
        value = float(below[k]) if below.ndim == 1 else float(below.reshape(-1)[k])
        terms = [{"at": [k], "input": value, "grad": float(dz[u]), "product": value * float(dz[u])}]
        total = terms[0]["product"]
        rule = f"input {k} times dL/dz of unit {u}: one product (a batch of one image)"
    elif isinstance(layer, Conv2D) and weight == "kernel":
        a, b, c, f = position
        h, w, _ = below.shape
        kh, kw, sh, sw, dh, dw, pt, pl = window_offsets(layer, h, w)
        group = f // (layer.filters // layer.groups)
        channel = group * layer.params["kernel"].shape[2] + c
        oh, ow = dz.shape[:2]
        for i in range(oh):
            for j in range(ow):
                yy, xx = i * sh - pt + a * dh, j * sw - pl + b * dw
                value = float(below[yy, xx, channel]) if 0 <= yy < h and 0 <= xx < w else 0.0
                terms.append({"at": [i, j], "input_at": [yy, xx, channel], "input": value, "grad": float(dz[i, j, f]),
                              "product": value * float(dz[i, j, f])})
        total = float(sum(t["product"] for t in terms))
        rule = (f"the sum over the {oh}x{ow} output positions of the input value under weight ({a}, {b}) of "
                f"channel {channel} times dL/dz of filter {f} there")
    else:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): its weight gradients are not explained")
    return {"kind": "weight_gradient", "layer": index, "name": layer.name, "weight": weight,
            "position": list(position), "rule": rule, "count": len(terms), "terms": _top(terms), "sum": total,
            "engine": engine, "equal": bool(np.isclose(total, engine, rtol=1e-4, atol=1e-7)),
            "loss": float(record.loss)}


def _batch_norm_gradient(record, index, layer, below, weight, position, engine):
    """BatchNormalization's gamma and beta in inference mode (the explorer's backward pass): out = gamma * x_hat
    + beta with x_hat = (x - moving_mean) / sqrt(moving_variance + epsilon), so dL/dgamma sums dL/dout * x_hat
    over every position of the channel and dL/dbeta sums dL/dout."""
    (c,) = position
    dout = record.out[layer.name][0]
    mean, variance = (float(layer.params[name][c]) for name in ("moving_mean", "moving_variance"))
    x_hat = (below[..., c].astype(np.float64) - mean) / np.sqrt(variance + layer.epsilon)
    cells = list(np.ndindex(dout.shape[:-1]))
    if weight == "gamma":
        terms = [{"at": list(cell), "input": float(x_hat[cell]), "grad": float(dout[cell + (c,)]),
                  "product": float(x_hat[cell]) * float(dout[cell + (c,)])} for cell in cells]
        rule = (f"the sum over every position of channel {c} of x_hat = (x - {mean:.4g}) / sqrt({variance:.4g} + "
                f"{layer.epsilon:g}) (the moving statistics: inference mode) times dL/dout")
    else:
        terms = [{"at": list(cell), "input": 1.0, "grad": float(dout[cell + (c,)]),
                  "product": float(dout[cell + (c,)])} for cell in cells]
        rule = f"the sum of dL/dout over every position of channel {c} (beta is added at each)"
    total = float(sum(t["product"] for t in terms))
    return {"kind": "weight_gradient", "layer": index, "name": layer.name, "weight": weight, "position": [c],
            "rule": rule, "count": len(terms), "terms": _top(terms), "sum": total, "engine": engine,
            "equal": bool(np.isclose(total, engine, rtol=1e-4, atol=1e-7)), "loss": float(record.loss)}


def input_gradient(record, index, row, col, channel):
    """dL/d(input) of layer ``index`` at one cell of its input, as the sum of its terms."""
    layer, below, _ = _layer(record, index)
    if not isinstance(layer, (Conv2D, MaxPooling2D)):
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): its input gradient is not explained; "
                         "choose a Conv2D or MaxPooling2D")
    h, w, cin = below.shape
    if not (0 <= row < h and 0 <= col < w and 0 <= channel < cin):
        raise ValueError(f"the input of layer {layer.name!r} is {h}x{w}x{cin}; ({row}, {col}, {channel}) is outside")
    if layer.name not in record.dx:
        raise ValueError(f"layer {layer.name!r} sent no gradient back (the model's first layer reads the data)")
    engine = float(record.dx[layer.name][0][row, col, channel])
    terms = []
    if isinstance(layer, Conv2D):
        dz = record.dz[layer.name][0]
        kernel = layer.params["kernel"].astype(np.float64)
        kh, kw, sh, sw, dh, dw, pt, pl = window_offsets(layer, h, w)
        per_group = kernel.shape[2]
        group, c = channel // per_group, channel % per_group
        out_group = layer.filters // layer.groups
        oh, ow = dz.shape[:2]
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    for b in range(kw):
                        if (i * sh - pt + a * dh, j * sw - pl + b * dw) != (row, col):
                            continue
                        for f in range(group * out_group, (group + 1) * out_group):
                            weight, grad = float(kernel[a, b, c, f]), float(dz[i, j, f])
                            terms.append({"window": [i, j, f], "tap": [a, b], "weight": weight, "grad": grad,
                                          "product": weight * grad})
        rule = ("col2im: the sum, over the windows that cover this cell, of the weight that met it times that "
                "window's dL/dz")
    elif isinstance(layer, MaxPooling2D):
        dout = record.out[layer.name][0]
        kh, kw, sh, sw, dh, dw, pt, pl = window_offsets(layer, h, w)
        oh, ow = dout.shape[:2]
        for i in range(oh):
            for j in range(ow):
                ys = [i * sh - pt + a for a in range(kh)]
                xs = [j * sw - pl + b for b in range(kw)]
                if row not in ys or col not in xs:
                    continue
                window = np.array([[below[y, x, channel] if 0 <= y < h and 0 <= x < w else -np.inf for x in xs]
                                   for y in ys])
                a, b = np.unravel_index(int(np.argmax(window)), window.shape)  # the first maximum, as the kernel
                won = (ys[a], xs[b]) == (row, col)
                grad = float(dout[i, j, channel])
                terms.append({"window": [i, j, channel], "won": bool(won), "grad": grad,
                              "product": grad if won else 0.0})
        rule = "max-pooling sends each window's dL/dout to its winner only: the sum over the windows this cell won"
    else:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): its input gradient is not explained; "
                         "choose a Conv2D or MaxPooling2D")
    total = float(sum(t["product"] for t in terms))
    return {"kind": "input_gradient", "layer": index, "name": layer.name, "cell": [row, col, channel], "rule": rule,
            "count": len(terms), "terms": _top(terms), "sum": total, "engine": engine,
            "equal": bool(np.isclose(total, engine, rtol=1e-4, atol=1e-7)), "loss": float(record.loss)}


def step_rule(optimizer, before, slots_before, grad, lr, iterations):
    """The update of one weight by ``optimizer``'s rule, in float64, with the numbers: (lines, new value)."""
    kind = type(optimizer).__name__
    g, w = float(grad), float(before)
    if kind == "Adadelta":
        rho, eps = optimizer.rho, optimizer.epsilon
        eg = rho * slots_before.get("Eg", 0.0) + (1 - rho) * g * g
        d = -np.sqrt(slots_before.get("Edx", 0.0) + eps) / np.sqrt(eg + eps) * g
        edx = rho * slots_before.get("Edx", 0.0) + (1 - rho) * d * d
        new = w + lr * d
        lines = [f"Eg = rho Eg + (1 - rho) g^2 = {rho} * {slots_before.get('Eg', 0.0):.6g} + {1 - rho:.6g} * "
                 f"{g:.6g}^2 = {eg:.6g}",
                 f"d = -sqrt(Edx + eps) / sqrt(Eg + eps) * g = -sqrt({slots_before.get('Edx', 0.0):.6g} + {eps}) / "
                 f"sqrt({eg:.6g} + {eps}) * {g:.6g} = {d:.6g}",
                 f"Edx = rho Edx + (1 - rho) d^2 = {edx:.6g}",
                 f"w = w + lr * d = {w:.6g} + {lr} * {d:.6g} = {new:.6g}"]
    elif kind == "SGD" and not optimizer.momentum:
        new = w - lr * g
        lines = [f"w = w - lr * g = {w:.6g} - {lr} * {g:.6g} = {new:.6g}"]
    elif kind == "SGD" and not optimizer.nesterov:
        m = optimizer.momentum * slots_before.get("m", 0.0) - lr * g
        new = w + m
        lines = [f"m = momentum m - lr g = {optimizer.momentum} * {slots_before.get('m', 0.0):.6g} - {lr} * {g:.6g} "
                 f"= {m:.6g}", f"w = w + m = {w:.6g} + {m:.6g} = {new:.6g}"]
    elif kind == "Adam" and not optimizer.amsgrad:
        b1, b2, eps, t = optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, iterations + 1
        m = slots_before.get("m", 0.0) + (g - slots_before.get("m", 0.0)) * (1 - b1)
        v = slots_before.get("v", 0.0) + (g * g - slots_before.get("v", 0.0)) * (1 - b2)
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        new = w - alpha * m / (np.sqrt(v) + eps)
        lines = [f"m = m + (g - m)(1 - beta_1) = {m:.6g}", f"v = v + (g^2 - v)(1 - beta_2) = {v:.6g}",
                 f"alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t) = {alpha:.6g} (step t = {t})",
                 f"w = w - alpha m / (sqrt(v) + eps) = {w:.6g} - {alpha:.6g} * {m:.6g} / (sqrt({v:.6g}) + {eps}) "
                 f"= {new:.6g}"]
    else:
        return None, None
    return lines, float(new)

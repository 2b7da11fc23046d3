"""``cnn explain-conv``: a small convolution worked out number by number.

The forward pass cell by cell (each output is the sum of the products of a
filter and the window under it, over every input channel), then the same as
one matrix product (im2col: one row per window), and with ``--backward`` the
gradients: dL/dW from the same windows (im2col's matrix transposed times the
output gradient) and dL/dx by sending each output's gradient back through the
filter to the cells of its window (col2im). Every number printed is checked
against what the engine's kernels (:mod:`kernels.conv`) compute.
"""
import numpy as np

from kernels.conv import conv2d_backward, conv2d_forward
from kernels.geometry import window_geometry
from kernels.im2col import col2im_numpy, im2col_numpy

from .errors import InputError

MAX_SIZE = 32  # every cell is printed: beyond this it is a wall of text


class ExplainError(InputError):
    """A matrix or option given to ``cnn explain-conv`` is unusable (a
    :class:`cnn.CNNError` and a ``ValueError``, as every input error)."""


def parse_matrix(text, what):
    """'1 2; 3 4' -> a 2x2 array (finite numbers, rows of equal length)."""
    try:
        rows = [[float(v) for v in row.replace(",", " ").split()] for row in text.split(";") if row.strip()]
    except ValueError:
        raise ExplainError(f"{what}: write numbers, rows separated by ';', e.g. '1 2; 3 4'") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise ExplainError(f"{what}: every row needs the same number of values")
    matrix = np.array(rows)
    if not np.isfinite(matrix).all():
        raise ExplainError(f"{what}: holds NaN or Inf; write finite numbers")
    if matrix.shape[0] > MAX_SIZE or matrix.shape[1] > MAX_SIZE:
        raise ExplainError(f"{what}: {matrix.shape[0]}x{matrix.shape[1]}; explain-conv prints every cell, "
                           f"so it takes at most {MAX_SIZE}x{MAX_SIZE}")
    return matrix


def parse_channels(text, what):
    """Channels separated by '|': an array (h, w, c)."""
    channels = [parse_matrix(part, f"{what} channel {k}") for k, part in enumerate(text.split("|"))]
    if len({c.shape for c in channels}) != 1:
        raise ExplainError(f"{what}: every channel needs the same size, got {[c.shape for c in channels]}")
    if len(channels) > 8:
        raise ExplainError(f"{what}: at most 8 channels")
    return np.stack(channels, axis=-1)


def fmt(v):
    """A number as short as it is exact enough: 3, -1, 0.5, 1.25e-05."""
    v = float(v)
    if v == 0:
        return "0"  # no '-0'
    return f"{v:.6g}"


def term(a, b):
    """One product, negative factors in parentheses: '2*(-1)'."""
    return f"{fmt(a) if a >= 0 else '(' + fmt(a) + ')'}*{fmt(b) if b >= 0 else '(' + fmt(b) + ')'}"


def show(matrix, indent="  "):
    """Print a matrix with columns as wide as its own widest number."""
    cells = [[fmt(v) for v in row] for row in matrix]
    width = max(len(c) for row in cells for c in row) + 1
    for row in cells:
        print(indent + "".join(c.rjust(width) for c in row))


def show_slices(array, label):
    """Print each slice of ``array`` (h, w, k) along its last axis, labelled only when there are several."""
    for k in range(array.shape[-1]):
        if array.shape[-1] > 1:
            print(f" {label} {k}:")
        show(array[:, :, k])


def explain(image, filters, stride=1, dilation=1, padding="1", backward=False, dout=None):
    """Print the worked convolution; return 0 when every number agrees with the engine.

    Parameters
    ----------
    image : (h, w, cin) array
    filters : list of (kh, kw, cin) arrays, one per output channel
    padding : 'same', 'valid' or a number of zeros on every side (as a string)
    dout : (oh, ow, filters) array or None (then all ones) for the backward pass
    """
    h, w, cin = image.shape
    if any(f.shape[2] != cin for f in filters):
        raise ExplainError(f"the image has {cin} channel(s); every filter needs as many ('|'-separated)")
    if len({f.shape for f in filters}) != 1:
        raise ExplainError("every filter needs the same size")
    kh, kw, _ = filters[0].shape
    if not 1 <= stride <= MAX_SIZE or not 1 <= dilation <= MAX_SIZE:
        raise ExplainError(f"--stride and --dilation must be from 1 to {MAX_SIZE}")
    if stride > 1 and dilation > 1:
        raise ExplainError("a stride above 1 cannot go with a dilation above 1 (as in Keras)")
    span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if padding in ("same", "valid"):
        try:
            oh, top, bottom = window_geometry(h, span_h, stride, padding)
            ow, left, right = window_geometry(w, span_w, stride, padding)
        except ValueError as err:
            raise ExplainError(str(err)) from None
        if padding == "valid":
            how = "no padding ('valid': the filter only visits windows inside the image)"
        elif top + bottom + left + right == 0:
            how = "no zeros needed ('same' with these sizes)"
        else:
            how = (f"'same' padding: {top} row(s) on top, {bottom} at the bottom, {left} column(s) on the left, "
                   f"{right} on the right (Keras's rule: an odd extra row or column goes at the bottom or right)")
        keras_padding = padding
    else:
        if not (padding.isascii() and padding.isdigit()) or int(padding) > MAX_SIZE:
            raise ExplainError(f"--padding must be 'same', 'valid' or a number of zeros from 0 to {MAX_SIZE}")
        top = bottom = left = right = int(padding)
        how = "no padding" if top == 0 else f"{top} row/column of zeros on every side"
        keras_padding = "valid"  # the zeros are added here, then nothing more
    padded = np.pad(image, ((top, bottom), (left, right), (0, 0)))
    if padded.shape[0] < span_h or padded.shape[1] < span_w:
        raise ExplainError(f"the {kh}x{kw} filter (spanning {span_h}x{span_w}) does not fit the padded "
                           f"{padded.shape[0]}x{padded.shape[1]} image")
    oh = (padded.shape[0] - span_h) // stride + 1
    ow = (padded.shape[1] - span_w) // stride + 1
    n_filters = len(filters)
    kernel = np.stack(filters, axis=-1)  # (kh, kw, cin, filters): Keras's layout

    channels = f", {cin} channels" if cin > 1 else ""
    print(f"Image {h}x{w}{channels}, padded with {how} -> {padded.shape[0]}x{padded.shape[1]}:")
    show_slices(padded, "channel")
    taps = f", dilation {dilation} (taps {dilation} apart: the {kh}x{kw} filter spans {span_h}x{span_w})" \
        if dilation > 1 else ""
    for k, f in enumerate(filters):
        label = f"Filter {k}" if n_filters > 1 else "Filter"
        print(f"{label} {kh}x{kw}{' x ' + str(cin) + ' channels' if cin > 1 else ''}:")
        show_slices(f, "channel")
    print(f"Stride {stride}{taps} -> output {oh}x{ow}{' x ' + str(n_filters) + ' filters' if n_filters > 1 else ''}. "
          "Each output cell is the sum of the")
    print("products of the filter and the window under it" + (", over every channel:" if cin > 1 else ":"))
    out = np.zeros((oh, ow, n_filters))
    for k in range(n_filters):
        for i in range(oh):
            for j in range(ow):
                window = padded[i * stride:i * stride + span_h:dilation, j * stride:j * stride + span_w:dilation]
                out[i, j, k] = float((window * kernel[..., k]).sum())
                parts = []
                for c in range(cin):
                    parts.append(" + ".join(term(a, b) for a, b in zip(window[..., c].ravel(), kernel[..., c, k].ravel())))
                terms = " + ".join(f"[{p}]" for p in parts) if cin > 1 else parts[0]
                cell = f"out[{i},{j}]" if n_filters == 1 else f"out[{i},{j},{k}]"
                print(f"  {cell} = {terms} = {fmt(out[i, j, k])}")
    print("Output:")
    show_slices(out, "filter")

    # the same computation, as the engine does it: one row per window, times the filters
    cols = im2col_numpy(padded[None], kh, kw, stride, stride, 0, 0, oh, ow, dilation, dilation)
    matrix = kernel.reshape(-1, n_filters)
    product = cols @ matrix
    print(f"\nThe same as one matrix product (im2col): the {oh * ow} windows as the rows of a "
          f"{cols.shape[0]}x{cols.shape[1]} matrix")
    print("(each row: the window's cells in (row, column, channel) order), times the filter"
          + (f"s flattened to a {matrix.shape[0]}x{n_filters} matrix:" if n_filters > 1 else
             f" flattened to [{' '.join(fmt(v) for v in matrix[:, 0])}]:"))
    width = max(len(fmt(v)) for v in cols.ravel()) + 1
    for r, row in enumerate(cols):
        values = " ".join(fmt(v) for v in product[r])
        print(f"  [{''.join(fmt(v).rjust(width) for v in row)} ] . filter{'s' if n_filters > 1 else ''} = {values}")
    engine, cache = conv2d_forward(padded[None] if keras_padding == "valid" else image[None], kernel, None,
                                   (stride, stride), keras_padding, impl="numpy", dilation=(dilation, dilation))
    same = np.allclose(product.reshape(oh, ow, n_filters), out) and np.allclose(engine[0], out)
    print(f"Reshaped to {oh}x{ow}, this is {'exactly the output above' if same else 'NOT the output above'}, "
          f"and what the engine's kernels/conv.py computes{'' if same else ' (IT DISAGREES)'}.")
    if not same:
        return 1
    if not backward:
        return 0

    # ---------------------------------------------------------------- backward
    if dout is None:
        dout = np.ones((oh, ow, n_filters))
    elif dout.shape != (oh, ow, n_filters):
        raise ExplainError(f"--dout must be {oh}x{ow}" + (f" x {n_filters} filters ('|'-separated)"
                                                           if n_filters > 1 else "") + f", got {dout.shape}")
    print("\nBackward pass. Given dL/dout, the gradient of the loss with respect to each output cell:")
    show_slices(dout, "filter")
    flat_dout = dout.reshape(-1, n_filters)
    dw = (cols.T @ flat_dout).reshape(kernel.shape)
    print("dL/dW: each weight multiplied one cell of every window, so its gradient is the sum over the")
    print("windows of that cell times the window's dL/dout, im2col's matrix transposed times dL/dout:")
    for k in range(n_filters):
        for c in range(cin):
            for a in range(kh):
                for b in range(kw):
                    cells = padded[a * dilation:a * dilation + (oh - 1) * stride + 1:stride,
                                   b * dilation:b * dilation + (ow - 1) * stride + 1:stride, c]
                    terms = " + ".join(term(x, g) for x, g in zip(cells.ravel(), dout[:, :, k].ravel()))
                    name = f"dW[{a},{b}" + (f",{c}" if cin > 1 else "") + (f",{k}" if n_filters > 1 else "") + "]"
                    print(f"  {name} = {terms} = {fmt(dw[a, b, c, k])}")
    dcols = flat_dout @ matrix.T  # each window's cells get dL/dout times the weight they met
    dpadded = col2im_numpy(dcols, (1, *padded.shape), kh, kw, stride, stride, 0, 0, oh, ow, dilation, dilation)[0]
    dx = dpadded[top:top + h, left:left + w]
    print("dL/dx: each output's dL/dout goes back to every cell of its window, times the weight that cell")
    print("met; a cell under several windows adds them up (col2im, the adjoint of im2col):")
    show_slices(dx, "channel")
    y0, x0 = h // 2, w // 2  # one cell, worked out
    contributions = []
    for k in range(n_filters):
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    for b in range(kw):
                        if (i * stride + a * dilation - top, j * stride + b * dilation - left) == (y0, x0):
                            contributions.append((dout[i, j, k], kernel[a, b, 0, k]))
    print(f"  for example dx[{y0},{x0}{',0' if cin > 1 else ''}] = "
          f"{' + '.join(term(g, v) for g, v in contributions) or '0'} = {fmt(dx[y0, x0, 0])}")
    if keras_padding == "valid":
        dx_engine, dw_engine, _ = conv2d_backward(dout[None], cache)
        dx_engine = dx_engine[0][top:top + h, left:left + w]
    else:
        dx_engine, dw_engine, _ = conv2d_backward(dout[None], cache)
        dx_engine = dx_engine[0]
    agree = np.allclose(dw, dw_engine) and np.allclose(dx, dx_engine)
    print(f"Both are what the engine's conv2d_backward computes{'.' if agree else ': IT DISAGREES.'}")
    return 0 if agree else 1

"""``cnn explain-conv``: a small convolution worked out number by number.

The forward pass cell by cell (each output is the sum of the products of a
filter and the window under it, over every input channel), then the same as
one matrix product (im2col: one row per window), and with ``--backward`` the
gradients: dL/dW from the same windows (im2col's matrix transposed times the
output gradient) and dL/dx by sending each output's gradient back through the
filter to the cells of its window (col2im). Every number printed is checked
against what the engine's kernels (:mod:`kernels.conv`) compute.

The modern layers, the same way: ``--transpose`` (each input value scattered
through the filter: the adjoint of a convolution, :func:`explain_transpose`),
``--depthwise`` (one filter per channel, then with ``--pointwise`` the 1x1
mix of SeparableConv2D, :func:`explain_depthwise`) and ``--groups``
(:func:`explain_groups`), each checked against the engine's kernels or layer.
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


def _checked_dout(dout, oh, ow, n_filters):
    """--dout for an (oh, ow, n_filters) output: all ones when not given."""
    if dout is None:
        return np.ones((oh, ow, n_filters))
    if dout.shape != (oh, ow, n_filters):
        raise ExplainError(f"--dout must be {oh}x{ow}" + (f" x {n_filters} filters ('|'-separated)"
                                                           if n_filters > 1 else "") + f", got {dout.shape}")
    return dout


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
    dout = _checked_dout(dout, oh, ow, n_filters)
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


# ---------------------------------------------------------------- the modern layers
def _window_padding(image, span_h, span_w, stride, padding):
    """The zeros put around ``image`` for windows of span (span_h, span_w):
    (padded, top, left, how), ``padding`` as explain-conv takes it."""
    h, w, _ = image.shape
    if padding in ("same", "valid"):
        try:
            _, top, bottom = window_geometry(h, span_h, stride, padding)
            _, left, right = window_geometry(w, span_w, stride, padding)
        except ValueError as err:
            raise ExplainError(str(err)) from None
        how = "no padding ('valid')" if padding == "valid" else (
            "no zeros needed ('same' with these sizes)" if top + bottom + left + right == 0 else
            f"'same' padding: {top} row(s) on top, {bottom} at the bottom, {left} column(s) on the left, "
            f"{right} on the right")
    else:
        if not (padding.isascii() and padding.isdigit()) or int(padding) > MAX_SIZE:
            raise ExplainError(f"--padding must be 'same', 'valid' or a number of zeros from 0 to {MAX_SIZE}")
        top = bottom = left = right = int(padding)
        how = "no padding" if top == 0 else f"{top} row/column of zeros on every side"
    padded = np.pad(image, ((top, bottom), (left, right), (0, 0)))
    if padded.shape[0] < span_h or padded.shape[1] < span_w:
        raise ExplainError(f"the filter (spanning {span_h}x{span_w}) does not fit the padded "
                           f"{padded.shape[0]}x{padded.shape[1]} image")
    return padded, top, left, how


def _inline(matrix):
    """A small matrix on one line: [1 0; -1 2]."""
    return "[" + "; ".join(" ".join(fmt(v) for v in row) for row in matrix) + "]"


def _verdict(agree, what):
    print(f"This is what {what} {'compute' if ' and ' in what else 'computes'}{'.' if agree else ': IT DISAGREES.'}")
    return 0 if agree else 1


def explain_transpose(image, filters, stride=1, padding="valid", backward=False, dout=None):
    """A transposed convolution (Conv2DTranspose) worked out: each input value
    scattered through the filter into the output, the overlaps added, Keras's
    'same' crop; then the same as the input gradient of the convolution it
    transposes, and with ``backward`` its gradients. Checked against
    :mod:`kernels.transpose` and :mod:`kernels.conv`."""
    from kernels.transpose import conv2d_transpose_backward, conv2d_transpose_forward, transpose_geometry

    h, w, cin = image.shape
    if any(f.shape != filters[0].shape for f in filters) or filters[0].shape[2] != cin:
        raise ExplainError(f"the image has {cin} channel(s); every filter needs as many ('|'-separated) and "
                           "the same size")
    if padding not in ("valid", "same"):
        raise ExplainError("--transpose takes --padding 'valid' or 'same' (Keras's Conv2DTranspose), not a "
                           "number of zeros")
    kh, kw, _ = filters[0].shape
    n_filters = len(filters)
    kernel = np.stack(filters, axis=2)  # (kh, kw, filters, cin): Keras's Conv2DTranspose layout
    g = transpose_geometry((1, h, w, cin), kernel.shape, (stride, stride), padding)
    out_h, out_w = g.out_h, g.out_w
    rule = (f"{h}*{stride} + max({kh}-{stride}, 0) = {out_h}" if padding == "valid" else f"{h}*{stride} = {out_h}")
    print(f"Transposed convolution: image {h}x{w}{f', {cin} channels' if cin > 1 else ''}, "
          f"{n_filters} filter(s) {kh}x{kw}, stride {stride}, padding '{padding}' -> output {out_h}x{out_w}"
          f"{f' x {n_filters} filters' if n_filters > 1 else ''}")
    print(f"(Keras's output size: rows {rule}).")
    print("Image:")
    show_slices(image, "channel")
    for k, f in enumerate(filters):
        print(f"Filter {k} {kh}x{kw}:" if n_filters > 1 else f"Filter {kh}x{kw}:")
        show_slices(f, "channel")
    crop = f", then the first {g.pad_top} row(s) and {g.pad_left} column(s) cut ('same')" \
        if g.pad_top or g.pad_left else ""
    print(f"Each input value is scattered: x[i,j] times the filter is added into the output window whose "
          f"top-left corner is ({stride}*i - {g.pad_top}, {stride}*j - {g.pad_left}){crop}; cells outside "
          f"the {out_h}x{out_w} output are cut:")
    out = np.zeros((out_h, out_w, n_filters))
    for i in range(h):
        for j in range(w):
            for c in range(cin):
                for k in range(n_filters):
                    r0, c0 = i * stride - g.pad_top, j * stride - g.pad_left
                    patch = image[i, j, c] * kernel[:, :, k, c]
                    rows = [r for r in range(r0, r0 + kh) if 0 <= r < out_h]
                    cols = [q for q in range(c0, c0 + kw) if 0 <= q < out_w]
                    for r in rows:
                        for q in cols:
                            out[r, q, k] += patch[r - r0, q - c0]
                    name = f"x[{i},{j}" + (f",{c}" if cin > 1 else "") + "]"
                    target = f" of filter {k}" if n_filters > 1 else ""
                    where = f"rows {rows[0]}-{rows[-1]}, columns {cols[0]}-{cols[-1]}" if rows and cols else "nowhere"
                    cut = "" if len(rows) * len(cols) == kh * kw else " (part cut)"
                    print(f"  {name} = {fmt(image[i, j, c])} -> adds {fmt(image[i, j, c])}*W{target} = "
                          f"{_inline(patch)} at {where}{cut}")
    print("Output (each cell the sum of what landed on it):")
    show_slices(out, "filter")
    engine, cache = conv2d_transpose_forward(image[None], kernel, None, (stride, stride), padding, impl="numpy")
    # the convolution being transposed: f channels of (out_h, out_w) -> cin channels of (h, w); its dL/dx for dL/dout = x
    from kernels.conv import conv2d_backward as conv_backward, conv2d_forward as conv_forward

    _, conv_cache = conv_forward(np.zeros((1, out_h, out_w, n_filters)), kernel, None, (stride, stride), padding,
                                 impl="numpy")
    adjoint = conv_backward(image[None], conv_cache)[0][0]
    print(f"\nThe same is the input gradient of the {kh}x{kw} stride-{stride} '{padding}' convolution from "
          f"{out_h}x{out_w}x{n_filters} to {h}x{w}x{cin} with this kernel (Keras stores it as (kh, kw, filters, in)")
    print("for that reason), given the image as its dL/dout: the transposed convolution is that convolution's "
          "adjoint.")
    agree = np.allclose(engine[0], out) and np.allclose(adjoint, out)
    status = _verdict(agree, "the engine's kernels/transpose.py (col2im of x times the kernel) and "
                             "kernels/conv.py's backward pass")
    if status or not backward:
        return status

    dout = _checked_dout(dout, out_h, out_w, n_filters)
    print("\nBackward pass. Given dL/dout:")
    show_slices(dout, "filter")
    print("dL/dx: each input value reached one output window, so its gradient is the sum of that window's "
          "dL/dout times the")
    print("filter: the forward convolution of dL/dout (a convolution's and a transposed convolution's passes swap):")
    dx = np.zeros_like(image)
    dw = np.zeros_like(kernel)
    for i in range(h):
        for j in range(w):
            for c in range(cin):
                parts = []
                for k in range(n_filters):
                    for a in range(kh):
                        for b in range(kw):
                            r, q = i * stride - g.pad_top + a, j * stride - g.pad_left + b
                            if 0 <= r < out_h and 0 <= q < out_w:
                                dx[i, j, c] += dout[r, q, k] * kernel[a, b, k, c]
                                dw[a, b, k, c] += dout[r, q, k] * image[i, j, c]
                                parts.append(term(dout[r, q, k], kernel[a, b, k, c]))
                name = f"dx[{i},{j}" + (f",{c}" if cin > 1 else "") + "]"
                print(f"  {name} = {' + '.join(parts) or '0'} = {fmt(dx[i, j, c])}")
    print("dL/dW: each weight met each input value once, at the cell where their product landed (never where "
          "that cell was cut); its gradient adds those cells' dL/dout times the input values:")
    for k in range(n_filters):
        for c in range(cin):
            name = "dW" + (f" of filter {k}" if n_filters > 1 else "") + (f", channel {c}" if cin > 1 else "")
            print(f"  {name}:")
            show(dw[:, :, k, c], "    ")
    dx_engine, dw_engine, _ = conv2d_transpose_backward(dout[None], cache)
    return _verdict(np.allclose(dx, dx_engine[0]) and np.allclose(dw, dw_engine),
                    "the engine's conv2d_transpose_backward")


def explain_depthwise(image, filters, stride=1, dilation=1, padding="1", pointwise=None):
    """A depthwise convolution worked out: one filter per input channel (a
    depth multiplier m gives m filters per channel, output channel c*m + k),
    no sum over channels; then, with ``pointwise`` (a (c*m, p) matrix), the
    1x1 convolution that mixes the channels (SeparableConv2D), and the
    multiplications both take against one full convolution. Checked against
    :mod:`kernels.depthwise` and the SeparableConv2D layer."""
    from kernels.depthwise import depthwise_forward

    h, w, cin = image.shape
    if any(f.shape != filters[0].shape for f in filters) or filters[0].shape[2] != 1:
        raise ExplainError("--depthwise: every filter is one channel ('|' not allowed) of the same size")
    if len(filters) % cin:
        raise ExplainError(f"--depthwise: the image has {cin} channel(s), so give {cin} filters (one per channel) "
                           f"or a multiple of {cin} (a depth multiplier), got {len(filters)}")
    if stride > 1 and dilation > 1:
        raise ExplainError("a stride above 1 cannot go with a dilation above 1 (as in Keras)")
    dm = len(filters) // cin
    kh, kw, _ = filters[0].shape
    span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    padded, top, left, how = _window_padding(image, span_h, span_w, stride, padding)
    oh, ow = (padded.shape[0] - span_h) // stride + 1, (padded.shape[1] - span_w) // stride + 1
    kernel = np.stack([f[:, :, 0] for f in filters], axis=-1).reshape(kh, kw, cin, dm)  # Keras's (kh, kw, c, m)
    print(f"Depthwise convolution: image {h}x{w}, {cin} channel(s), padded with {how} -> "
          f"{padded.shape[0]}x{padded.shape[1]}; {len(filters)} filter(s) {kh}x{kw} (depth multiplier {dm}: "
          f"output channel c*{dm} + k is filter k of channel c), stride {stride}"
          + (f", dilation {dilation}" if dilation > 1 else "") + f" -> output {oh}x{ow}x{cin * dm}.")
    show_slices(padded, "channel")
    print("Each output cell is the sum of the products of ONE channel's window and its own filter; the channels "
          "are not added:")
    out = np.zeros((oh, ow, cin * dm))
    for c in range(cin):
        for m in range(dm):
            k = c * dm + m
            print(f" output channel {k}: input channel {c}, filter {_inline(kernel[:, :, c, m])}")
            for i in range(oh):
                for j in range(ow):
                    window = padded[i * stride:i * stride + span_h:dilation, j * stride:j * stride + span_w:dilation, c]
                    out[i, j, k] = float((window * kernel[:, :, c, m]).sum())
                    terms = " + ".join(term(a, b) for a, b in zip(window.ravel(), kernel[:, :, c, m].ravel()))
                    print(f"  out[{i},{j},{k}] = {terms} = {fmt(out[i, j, k])}")
    print("Output:")
    show_slices(out, "channel")
    keras_padding = padding if padding in ("same", "valid") else "valid"  # a number: the zeros are added here
    source = image if padding in ("same", "valid") else padded
    engine, _ = depthwise_forward(source[None], kernel, None, (stride, stride), keras_padding,
                                  dilation=(dilation, dilation), impl="numpy")
    status = _verdict(np.allclose(engine[0], out), "the engine's kernels/depthwise.py")
    if status or pointwise is None:
        return status

    if pointwise.shape[0] != cin * dm:
        raise ExplainError(f"--pointwise needs {cin * dm} rows (one per depthwise output channel), got "
                           f"{pointwise.shape[0]}")
    p = pointwise.shape[1]
    mixed = out @ pointwise
    print(f"\nThen the pointwise 1x1 convolution (SeparableConv2D's second step): a {cin * dm}x{p} matrix mixes "
          "the channels of each cell:")
    show(pointwise)
    for i in range(oh):
        for j in range(ow):
            for q in range(p):
                terms = " + ".join(term(a, b) for a, b in zip(out[i, j], pointwise[:, q]))
                print(f"  y[{i},{j},{q}] = {terms} = {fmt(mixed[i, j, q])}")
    print("Output:")
    show_slices(mixed, "channel")
    separable = kh * kw * cin * dm + cin * dm * p
    full = kh * kw * cin * p
    print(f"Multiplications per output position (all {p} of its channels): {kh}*{kw}*{cin}*{dm} + {cin}*{dm}*{p} = "
          f"{separable}, where one {kh}x{kw} convolution from {cin} to {p} channels takes {kh}*{kw}*{cin}*{p} = "
          f"{full}.")
    from .layers import SeparableConv2D

    layer = SeparableConv2D(p, (kh, kw), strides=stride, dilation_rate=dilation, depth_multiplier=dm,
                            padding=keras_padding, use_bias=False, dtype="float64")
    layer.build(source.shape)
    layer.set_weights([kernel, pointwise.reshape(1, 1, cin * dm, p)])
    return _verdict(np.allclose(layer(source[None])[0], mixed), "the engine's SeparableConv2D layer")


def explain_groups(image, filters, groups, stride=1, dilation=1, padding="1"):
    """A grouped convolution worked out: the channels split into ``groups``
    contiguous groups, each filter reading only its own group's channels
    (Conv2D(groups=)). Checked against the engine's Conv2D layer."""
    from .layers import Conv2D

    h, w, cin = image.shape
    n_filters = len(filters)
    if cin % groups or n_filters % groups:
        raise ExplainError(f"--groups {groups}: the image's {cin} channel(s) and the {n_filters} filter(s) must "
                           f"both divide into {groups} groups")
    per_group, out_group = cin // groups, n_filters // groups
    if any(f.shape != filters[0].shape for f in filters) or filters[0].shape[2] != per_group:
        raise ExplainError(f"--groups {groups}: each filter reads its group's {per_group} channel(s), so give "
                           f"{per_group} '|'-separated channel(s) a filter, all of one size")
    if stride > 1 and dilation > 1:
        raise ExplainError("a stride above 1 cannot go with a dilation above 1 (as in Keras)")
    kh, kw, _ = filters[0].shape
    span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    padded, top, left, how = _window_padding(image, span_h, span_w, stride, padding)
    oh, ow = (padded.shape[0] - span_h) // stride + 1, (padded.shape[1] - span_w) // stride + 1
    kernel = np.stack(filters, axis=-1)  # (kh, kw, cin / groups, filters): Keras's layout
    print(f"Grouped convolution: image {h}x{w}, {cin} channels in {groups} groups of {per_group}, padded with {how}; "
          f"{n_filters} filters {kh}x{kw}, {out_group} per group -> output {oh}x{ow}x{n_filters}.")
    print(f"Filter k belongs to group k // {out_group} and reads only that group's channels "
          f"(group g: channels {per_group}*g to {per_group}*g + {per_group - 1}):")
    show_slices(padded, "channel")
    out = np.zeros((oh, ow, n_filters))
    for k in range(n_filters):
        g = k // out_group
        first = g * per_group
        print(f" filter {k} (group {g}, input channels {first}-{first + per_group - 1}):")
        show_slices(filters[k], "its channel")
        for i in range(oh):
            for j in range(ow):
                window = padded[i * stride:i * stride + span_h:dilation, j * stride:j * stride + span_w:dilation,
                                first:first + per_group]
                out[i, j, k] = float((window * kernel[..., k]).sum())
                parts = [" + ".join(term(a, b) for a, b in zip(window[..., c].ravel(), kernel[..., c, k].ravel()))
                         for c in range(per_group)]
                terms = " + ".join(f"[{p}]" for p in parts) if per_group > 1 else parts[0]
                print(f"  out[{i},{j},{k}] = {terms} = {fmt(out[i, j, k])}")
    print("Output:")
    show_slices(out, "filter")
    print(f"Multiplications per output cell: {kh}*{kw}*{per_group} = {kh * kw * per_group}, 1/{groups} of the "
          f"{kh}*{kw}*{cin} = {kh * kw * cin} of an ungrouped convolution.")
    layer = Conv2D(n_filters, (kh, kw), strides=stride, dilation_rate=dilation, groups=groups, use_bias=False,
                   padding=padding if padding in ("same", "valid") else "valid", dtype="float64", impl="numpy")
    source = image if padding in ("same", "valid") else padded
    layer.build(source.shape)
    layer.set_weights([kernel])
    return _verdict(np.allclose(layer(source[None])[0], out), "the engine's Conv2D(groups=) layer")

"""The cnn command: train, evaluate, predict, and look inside a CNN.

    cnn train                      the chapter's model on the bundled data
    cnn evaluate MODEL             loss, accuracy, per class, confusion matrix
    cnn predict MODEL IMAGE...     PNG, the chapter's text format, or FILE.idx:N
    cnn show                       an MNIST record as hexadecimal and as a picture
    cnn explain-conv               every output cell of a small convolution, twice
    cnn visualize MODEL            filters, feature maps, curves, confusion (PNG)
    cnn explore [MODEL]            a page in the browser: draw, watch every layer, click a cell, train
    cnn gradcheck                  finite-difference check of every layer
    cnn export MODEL OUT.onnx      the model as ONNX, for ONNX Runtime

Every command has ``--help``. Errors are one line on stderr and exit code 1
(2 for bad arguments).
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .chapter import class_name as _name
from .metrics import confusion_matrix
from .data import (BUNDLED_DATA, find_mnist_file, one_hot, read_idx_images, read_idx_labels,
                   read_text)
from .errors import CNNError, DataFileError
from .images import write_png
from .saving import load_model
from .layers import Conv2D
from .random import set_seed


class CommandError(CNNError):
    """A command cannot do what it was asked (the message says why)."""


# ---------------------------------------------------------------- helpers
def _architecture(name, optimizer, input_shape=(28, 28, 1), augment=False):
    from .architectures import ARCHITECTURES, digit_augmentation

    options = {"input_shape": input_shape, "augmentation": digit_augmentation() if augment else ()}
    if optimizer is not None:
        options["optimizer"] = optimizer
    return ARCHITECTURES[name](**options)


def _augmentation_text(layer):
    """RandomZoom(height_factor=0.1, width_factor=None, fill_mode='constant'): the arguments that say what it draws."""
    config = layer.get_config()
    shown = [key for key in ("factor", "height_factor", "width_factor", "fill_mode") if key in config]
    return f"{type(layer).__name__}(" + ", ".join(f"{key}={config[key]!r}" for key in shown) + ")"


def _targets(model, labels):
    """Labels as the model's loss takes them: integers for a sparse loss, else one-hot rows."""
    from .losses import SparseCategoricalCrossentropy

    return labels.astype(np.int64) if isinstance(model.loss, SparseCategoricalCrossentropy) else one_hot(labels)


def plot_history(curves, path):
    """The training curves picture (cnn.plots.history), as a command error when matplotlib is missing."""
    from . import plots

    try:
        plots.history(curves, path)
    except plots.PlotError as err:
        raise CommandError(str(err)) from None


def _digit_model(model, where):
    """Refuse, in one line, a model that does not take 28x28 grayscale digits."""
    if tuple(model.input_shape or ()) != (28, 28, 1):
        raise CommandError(f"{where}: the model takes samples of shape {model.input_shape}; "
                           "this command feeds it 28x28 grayscale digits (28, 28, 1)")
    return model


def _check_out_path(out):
    """The model file ``--out`` names, checked before any work is done."""
    if not str(out).strip():
        raise CommandError("--out is empty: give the model file's name, e.g. --out model.npz")
    out = Path(out)
    if out.is_dir() or str(out).endswith(("/", "\\")):
        raise CommandError(f"--out {out}: is a directory; give a file name, e.g. {out / 'model.npz'}")
    if out.suffix == ".h5":
        raise CommandError(f"--out {out}: the legacy .h5 format is not written; use .npz or .keras")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CommandError(f"--out {out}: its folder cannot be made ({err.strerror})") from None
    if not os.access(out.parent, os.W_OK):
        raise CommandError(f"--out {out}: its folder is not writable")
    return out


def _load_images_arg(spec):
    """Images from a PNG, the chapter's text format, or FILE.idx[.gz]:N."""
    path, _, index = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
    path = Path(path)
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    if index:
        if not (index.isascii() and index.isdigit()):
            raise CommandError(f"{spec}: the record index after ':' must be a whole number >= 0")
        images = read_idx_images(path, int(index) + 1)
        if len(images) <= int(index):
            raise CommandError(f"{path} has only {len(images)} records, no record {index}")
        return [(f"{path.name}:{index}", images[int(index)])]
    if _looks_like_an_image(path):
        return [(path.name, _png_digit(path))]
    if path.suffix.lower() in IMAGE_SUFFIXES:  # named as a picture, and not one: say so, whatever it holds
        try:
            images, _ = read_text(path)
        except DataFileError as err:
            raise DataFileError(f"{path}: not an image (its first bytes are none of PNG, JPEG, GIF, BMP, WebP or "
                                f"TIFF), nor records of the chapter's text format ({err})") from None
    else:
        images, _ = read_text(path)
    return [(f"{path.name} line {i + 1}", img.reshape(28, 28)) for i, img in enumerate(images)]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


def _looks_like_an_image(path):
    """PNG, JPEG, GIF, BMP, WebP or TIFF by their first bytes; anything else is read as the text format."""
    from .limits import open_regular

    with open_regular(path, DataFileError) as f:
        head = f.read(8)
    return any(head.startswith(magic) for magic in IMAGE_MAGIC)


def _png_digit(path):
    """A picture of a digit, any size or format, made MNIST-like (cnn.images.read_digit)."""
    from .images import read_digit

    image, notes = read_digit(path)
    for note in notes:
        print(f"{path.name}: {note}")
    return image


# ---------------------------------------------------------------- commands
def cmd_train(args):
    out = _check_out_path(args.out)  # before the work, not after it
    set_seed(args.seed)
    from .data import load_mnist_split

    # the training split only: validation is held out of it (Keras's validation_split), and the
    # test split is left for `cnn evaluate`, so that it says something about unseen digits
    x, labels = load_mnist_split(args.data, "train", args.n_train, "--n-train")
    model = _architecture(args.arch, args.optimizer, x.shape[1:], args.augment)
    y = _targets(model, labels)
    held = len(x) - int(np.floor(len(x) * (1 - args.validation_split)))
    print(f"training the {args.arch} model ({model.count_params():,} parameters) on {len(x) - held:,} images "
          f"(the last {held:,} held out for validation), {args.epochs} epochs, batch {args.batch_size}, "
          f"{type(model.optimizer).__name__}, seed {args.seed}")
    if args.augment:
        print("augmented in training only: " + ", ".join(_augmentation_text(layer) for layer in model.layers
                                                         if type(layer).__name__.startswith("Random")))
    from .callbacks import ProgressBar

    # --progress yes draws the bar even into a pipe (fit's own verbose=1 draws it on a terminal only)
    bar = args.progress == "yes" or (args.progress == "auto" and sys.stderr.isatty())
    progress = ProgressBar(bar=bar, epochs=args.epochs, steps=-(-(len(x) - held) // args.batch_size))
    history = model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[progress],
                        validation_split=args.validation_split)
    model.save(out)
    history_path = out.with_suffix(".history.json")
    history_path.write_text(json.dumps(history.history, indent=1))
    print(f"model saved to {out}, history to {history_path}")
    try:
        plot_history(history.history, out.with_suffix(".curves.png"))
        print(f"training curves drawn to {out.with_suffix('.curves.png')}")
    except CommandError as err:
        print(f"note: no curves drawn ({err})")


def cmd_evaluate(args):
    from .data import load_mnist_split

    model = _digit_model(load_model(args.model), args.model)
    x, labels = load_mnist_split(args.data, "test", args.n_test)  # the test split only, its first N records
    if not model.metrics:
        raise CommandError(f"{args.model}: the model was saved without an accuracy metric")
    classes = model.output_shape[-1]
    if labels.max(initial=0) >= classes:
        raise CommandError(f"{args.data}: labels go up to {labels.max()}, the model has {classes} outputs")
    loss, acc = model.evaluate(x, _targets(model, labels), batch_size=500)[:2]
    predicted = model.predict(x, batch_size=500).argmax(axis=1)
    counts = confusion_matrix(labels, predicted, classes)
    print(f"{len(x):,} test images: loss = {loss:.4f} accuracy = {acc * 100:.2f}%")
    print("\nper class:")
    for digit in range(classes):
        total = counts[digit].sum()
        share = counts[digit, digit] / total * 100 if total else float("nan")
        print(f"  {digit} {_name(digit):>5s}: {share:6.2f}% of {total}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    print("      " + "".join(f"{d:>5d}" for d in range(classes)))
    for digit in range(classes):
        print(f"  {digit:>2d}  " + "".join(f"{c:>5d}" for c in counts[digit]))


def cmd_predict(args):
    model = _digit_model(load_model(args.model), args.model)
    shown = 0
    for spec in args.images:
        for name, image in _load_images_arg(spec):
            if args.show_input:
                target = Path(args.show_input)
                if shown:
                    target = target.with_name(f"{target.stem}_{shown}{target.suffix}")
                write_png(target, image, scale=8)
                print(f"{name}: the 28x28 the model sees written to {target} (scaled x8)")
                shown += 1
            if image.shape != (28, 28):
                raise CommandError(f"{name}: a {image.shape[0]}x{image.shape[1]} record; the model reads 28x28 digits")
            x = (image.astype(np.float32) / 255.0).reshape(1, 28, 28, 1)  # scaled as in training
            probs = model.predict(x)[0]
            digit = int(probs.argmax())
            print(f"{name}: {digit} ({_name(digit)}) with probability {probs[digit]:.4f}")
            print("  " + " ".join(f"{d}:{p:.4f}" for d, p in enumerate(probs)))


def cmd_show(args):
    if args.augment is not None:
        return _show_augmented(args)
    images_path = find_mnist_file(args.data, args.split, "images")
    labels_path = find_mnist_file(args.data, args.split, "labels")
    images = read_idx_images(images_path, args.index + 1)
    if len(images) <= args.index:
        raise CommandError(f"{images_path} has only {len(images)} records, no record {args.index}")
    labels = read_idx_labels(labels_path, args.index + 1)
    if len(labels) <= args.index:
        raise CommandError(f"{labels_path} has only {len(labels)} labels, no label {args.index}")
    label = int(labels[args.index])
    image = images[args.index]
    rows, cols = image.shape
    print(f"{args.split} record {args.index}: {'digit' if label < 10 else 'label'} {label} ({_name(label)}), {rows}x{cols} pixels in hexadecimal")
    for row in image:
        print(" ".join(f"{v:02X}" for v in row))
    if args.out:
        write_png(args.out, 255 - image, scale=8,  # gray_r, as in the chapter: dark ink on white
                  caption=f"{args.split} record {args.index}: {_name(label)} ({label})\n{rows}x{cols} pixels, dark = ink")
        print(f"picture written to {args.out}")


def _show_augmented(args):
    """cnn show --augment N: records INDEX.. before and after cnn train --augment's layers, in training mode."""
    from .architectures import digit_augmentation
    from .data import load_mnist_split

    if not args.out:
        raise CommandError("--augment draws a picture: give --out FILE.png")
    if not 1 <= args.augment <= 32:
        raise CommandError(f"--augment {args.augment}: draw between 1 and 32 images")
    x, labels = load_mnist_split(args.data, args.split, args.index + args.augment)
    x, labels = x[args.index:], labels[args.index:]
    if not len(x):
        raise CommandError(f"the {args.split} split has no record {args.index}")
    set_seed(args.seed)
    layers = digit_augmentation()
    out = x
    for layer in layers:
        out = layer(out, training=True)
    text = ", ".join(_augmentation_text(layer) for layer in layers)
    print(f"{args.split} records {args.index} to {args.index + len(x) - 1}, augmented with seed {args.seed}: {text}")
    print(f"mean absolute change per pixel: {float(np.abs(out - x).mean()):.4f} (pixels from 0 to 1)")
    plot_augmented(x, out, [int(label) for label in labels], args.out,
                   "\n".join(_augmentation_text(layer) for layer in layers))
    print(f"picture written to {args.out}")


def plot_augmented(before, after, labels, path, text):
    from . import plots

    try:
        plots.augmented(before, after, labels, path, text)
    except plots.PlotError as err:
        raise CommandError(str(err)) from None


def cmd_explain_conv(args):
    from . import explain

    try:
        image = explain.parse_channels(args.image, "--image")
        filters = [explain.parse_channels(text, f"--filter {k}") for k, text in enumerate(args.filter or
                                                                                        [DEFAULT_FILTER])]
        dout = None
        if args.dout is not None:
            dout = explain.parse_channels(args.dout, "--dout")
        modes = [name for name, on in (("--transpose", args.transpose), ("--depthwise", args.depthwise),
                                       ("--groups", args.groups is not None)) if on]
        if len(modes) > 1:
            raise CommandError(f"{' and '.join(modes)}: give one of them")
        if args.pointwise is not None and not args.depthwise:
            raise CommandError("--pointwise is the second step of --depthwise (SeparableConv2D): add --depthwise")
        if args.backward and (args.depthwise or args.groups is not None):
            raise CommandError(f"--backward works out a plain or a --transpose convolution, not {modes[0]}")
        if args.transpose:
            if args.dilation != 1:
                raise CommandError("--transpose: --dilation is not worked out for a transposed convolution")
            return explain.explain_transpose(image, filters, args.stride, args.padding or "valid", args.backward,
                                             dout)
        padding = args.padding or "1"
        if args.depthwise:
            pointwise = None if args.pointwise is None else explain.parse_matrix(args.pointwise, "--pointwise")
            return explain.explain_depthwise(image, filters, args.stride, args.dilation, padding, pointwise)
        if args.groups is not None:
            return explain.explain_groups(image, filters, args.groups, args.stride, args.dilation, padding)
        return explain.explain(image, filters, args.stride, args.dilation, padding, args.backward, dout)
    except explain.ExplainError as err:
        raise CommandError(str(err)) from None


def _explain_size(text):
    """--stride / --dilation of explain-conv: a bad one is a bad argument (exit 2), as every other."""
    from .explain import MAX_SIZE

    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_SIZE}, got {text!r}")
    return int(text)


def _explain_padding(text):
    from .explain import MAX_SIZE

    if text in ("same", "valid") or (text.isascii() and text.isdigit() and int(text) <= MAX_SIZE):
        return text
    raise argparse.ArgumentTypeError(f"must be 'same', 'valid' or a number of zeros from 0 to {MAX_SIZE}, "
                                     f"got {text!r}")


DEFAULT_IMAGE = "1 0 2 1 0; 0 1 3 1 2; 2 1 0 0 1; 1 3 1 2 0; 0 2 1 1 3"
DEFAULT_FILTER = "1 0 -1; 1 0 -1; 1 0 -1"


def cmd_visualize(args):
    from . import plots
    from .data import load_mnist_split

    plots.pyplot()  # matplotlib or a one-line error, before any work
    model = _digit_model(load_model(args.model), args.model)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: is a file; give a folder for the pictures")
    out.mkdir(parents=True, exist_ok=True)
    xt, labels = load_mnist_split(args.data, "test", args.n_test)  # the same images as `cnn evaluate`
    if args.index >= len(xt):
        raise CommandError(f"{args.data}: the test split has {len(xt)} images, no image {args.index}")
    written = []
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    if convs:
        plots.filters(convs[0], out / "filters.png")
        written.append(out / "filters.png")
    plots.feature_maps(model, xt[args.index:args.index + 1], labels[args.index], out / "feature_maps.png")
    written.append(out / "feature_maps.png")
    predicted = model.predict(xt, batch_size=500).argmax(axis=1)
    classes = max(model.output_shape[-1], int(labels.max(initial=0)) + 1)
    plots.confusion(labels, predicted, out / "confusion.png", classes)
    written.append(out / "confusion.png")

    history = Path(args.history) if args.history else Path(args.model).with_suffix(".history.json")
    if history.exists():
        from .limits import MAX_HISTORY_BYTES, load_json, read_regular

        try:
            text = read_regular(history, DataFileError, MAX_HISTORY_BYTES).decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{history}: not a history file (not UTF-8 text)") from None
        curves = load_json(text, DataFileError, f"{history}")
        if not isinstance(curves, dict) or not isinstance(curves.get("loss"), list) or not all(
                isinstance(v, list) and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in v)
                and len(v) == len(curves["loss"]) for v in curves.values()):
            raise CommandError(f"{history}: not a history file (lists of numbers per epoch, one of them 'loss')")
        plot_history(curves, out / "curves.png")
        written.append(out / "curves.png")
    elif args.history:
        raise CommandError(f"{history}: no such file")
    else:
        print(f"no training curves: {history} is not there (cnn train writes it beside the model; "
              "--history names another)")
    for path in written:
        print(f"wrote {path}")


def _cache_folder():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnn-from-scratch"


def cmd_explore(args):
    from .explorer.server import make_server

    if args.model:
        model = load_model(args.model)
    else:  # the chapter's model, trained on the bundled data once and kept
        cached = Path(args.cache) if args.cache else _cache_folder() / "chapter-explorer.npz"
        if cached.is_file():
            model = load_model(cached)
            print(f"the chapter's model from {cached}")
        else:
            from .data import load_mnist_split

            print(f"training the chapter's model once on the bundled data (50 epochs, about a minute); "
                  f"it is kept in {cached}", flush=True)
            set_seed(2)
            x, labels = load_mnist_split(None, "train", 1000)
            model = _architecture("chapter", None)
            model.fit(x, _targets(model, labels), batch_size=128, epochs=50, verbose=1 if sys.stderr.isatty() else 0)
            cached.parent.mkdir(parents=True, exist_ok=True)
            model.save(cached)
    from .explorer.app import image_shape

    image_shape(model)  # one image input of 1 or 3 channels, or refused by name
    try:
        server = make_server(model, args.host, args.port)
    except OSError as err:
        raise CommandError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err})") from None
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/"
    print(f"cnn explore: serving on {url} (Ctrl-C stops it)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {args.host}: other machines on the network can reach this page", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def gradcheck_cases():
    """(name, layer, example) for every example every registered layer
    declares (cnn.layers.BUILT_IN; each Conv2D algorithm is one): what
    ``cnn gradcheck`` checks."""
    from .layers import BUILT_IN

    return [(f"{name} {example.label}".strip(), cls(**example.config), example)
            for name, cls in BUILT_IN.items() for example in cls.examples]


def gradcheck_losses():
    """(name, loss, from_logits for check_loss, label kind) for every loss."""
    from .losses import BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError, SparseCategoricalCrossentropy

    return [
        ("categorical_crossentropy", CategoricalCrossentropy(), False, "onehot"),
        ("categorical_crossentropy (from logits)", CategoricalCrossentropy(), True, "onehot"),
        ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy(), False, "sparse"),
        ("sparse_categorical_crossentropy (from logits)", SparseCategoricalCrossentropy(), True, "sparse"),
        ("binary_crossentropy", BinaryCrossentropy(), False, "binary"),
        ("binary_crossentropy (from logits)", BinaryCrossentropy(), True, "binary"),
        ("mean_squared_error", MeanSquaredError(), False, "onehot"),
    ]


def cmd_export(args):
    out = Path(args.out)
    if out.suffix != ".onnx":
        raise CommandError(f"{args.out}: give an .onnx file name (the model's own formats: cnn train --out)")
    out = _check_out_path(args.out)
    model = load_model(args.model)
    from .onnx import export

    proto = export(model, out)
    for tensor in proto.graph.input:
        dims = ", ".join(d.dim_param or str(d.dim_value) for d in tensor.type.tensor_type.shape.dim)
        print(f"input {tensor.name!r} ({dims}), NHWC float32")
    for tensor in proto.graph.output:
        dims = ", ".join(d.dim_param or str(d.dim_value) for d in tensor.type.tensor_type.shape.dim)
        print(f"output {tensor.name!r} ({dims})")
    print(f"{len(proto.graph.node)} ONNX nodes (opset {proto.opset_import[0].version}), inference only "
          f"(dropout and augmentation off, BatchNorm's moving statistics), written to {out}")


def cmd_gradcheck(args):
    from .gradcheck import check_gradients, check_layer
    from .testing import example_input

    set_seed(args.seed)  # the layers' initial weights too: the same table every time
    rng = np.random.default_rng(args.seed)
    # 'norm error': |a - n| / |n| over a whole array (2-norms), unlike check_layer's per-entry 'rel. error'
    print(f"{'case':46s} {'entries':>7s} {'max |a-n|':>10s} {'norm error':>10s}  tolerance (each entry)")
    failed = 0

    def row(name, report):
        nonlocal failed
        checks = report.arrays.values()
        entries = sum(c.checked for c in checks)
        worst = max((c.max_abs_error for c in checks), default=0.0)
        rel = max(report.values(), default=0.0)
        ok = report.passed and rel < args.tolerance
        failed += not ok
        print(f"{name:46s} {entries:7d} {worst:10.1e} {rel:10.1e}  "
              f"{report.atol:g} + {report.rtol:g} * |numeric|{'' if ok else '  FAILED'}")

    for name, layer, example in gradcheck_cases():
        # distinct values (no pooling ties), none on ReLU's kink at 0
        x = example_input(example, seed=args.seed)
        row(name, check_layer(layer, x, training=example.training, seed=args.seed, raise_on_failure=False))
    for name, loss, logits, kind in gradcheck_losses():
        k = rng.integers(0, 5, 6)
        y = {"onehot": np.eye(5)[k], "sparse": k, "binary": rng.integers(0, 2, (6, 5)).astype(float)}[kind]
        pred = rng.standard_normal((6, 5)) if logits else rng.uniform(0.05, 0.95, (6, 5))
        if not logits and kind != "binary":
            pred = pred / pred.sum(axis=1, keepdims=True)
        forward = loss.forward_from_logits if logits else loss.forward
        backward = loss.backward_from_logits if logits else loss.backward
        row(name, check_gradients(lambda p: forward(p, y), pred, backward=lambda d: (backward() * float(d),),
                                  names=["predictions"], raise_on_failure=False))
    print(f"{'all' if not failed else failed} {'passed' if not failed else 'FAILED'}: central differences in float64, "
          f"eps 1e-6; each entry within the tolerance shown, and every norm error (|a - n| / |n| over a whole "
          f"array) below {args.tolerance:g}")
    return 0 if not failed else 1


# ---------------------------------------------------------------- parser
def build_parser():
    parser = argparse.ArgumentParser(prog="cnn", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run 'cnn COMMAND --help' for each command's options.")
    parser.add_argument("--version", action="version", version=f"cnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def data_option(p):
        p.add_argument("--data", type=Path, default=BUNDLED_DATA,
                       help="folder with the four MNIST IDX files (default: the bundled subset)")

    p = sub.add_parser("train", help="train a model and save it with its history and curves")
    data_option(p)
    p.add_argument("--arch", choices=["chapter", "lenet5", "small_vgg", "small", "resnet"], default="chapter",
                   help="architecture (default: chapter; see cnn/architectures.py)")
    p.add_argument("--n-train", type=int, default=1000,
                   help="the first N images of the training file (default 1000, the chapter's)")
    p.add_argument("--validation-split", type=float, default=0.1,
                   help="the last fraction of those images, held out to validate after each epoch, as Keras's "
                        "validation_split (default 0.1; the test file is never touched: see cnn evaluate)")
    p.add_argument("--epochs", type=int, default=50, help="passes over the training images (default 50)")
    p.add_argument("--batch-size", type=int, default=128, help="images per optimizer step (default 128)")
    p.add_argument("--optimizer", default=None, choices=["adadelta", "adam", "adamw", "rmsprop", "adagrad", "sgd"],
                   help="optimizer by Keras name (default: the architecture's own: adadelta for chapter and small, "
                        "adam for lenet5 and small_vgg)")
    p.add_argument("--seed", type=int, default=2,
                   help="fixes the initial weights, dropout masks and shuffling (default 2, the chapter's)")
    p.add_argument("--out", default="model.npz",
                   help="model file to write: .npz (the engine's, with the whole training state) or .keras "
                        "(Keras 3 loads it) (default model.npz)")
    p.add_argument("--progress", choices=["auto", "yes", "no"], default="auto",
                   help="a progress bar over each epoch's batches (auto: when stderr is a terminal)")
    p.add_argument("--augment", action="store_true",
                   help="random rotations (up to 18 degrees), shifts and zooms (up to 10%%) of each training batch, "
                        "as layers at the model's start that act in training only "
                        "(cnn.architectures.digit_augmentation; cnn show --augment draws them)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("evaluate", help="loss, accuracy, per-class accuracy and confusion matrix")
    p.add_argument("model", help="a model file saved by the engine")
    data_option(p)
    p.add_argument("--n-test", type=int, default=None, help="first N test images (default: all)")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="classify pictures of digits (any size, PNG, JPEG, ...), the chapter's "
                                       "text format, or FILE.idx:N")
    p.add_argument("model", help="a model file (.npz, or a Keras .keras file)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="a picture of a digit in any size and common format (cropped to its ink, scaled to 20 "
                        "pixels and centred in 28x28 as MNIST's digits were; a light page is inverted, a "
                        "transparent one's strokes are the ink), a text file of 'label ** p1 ... p784' lines, "
                        "or an IDX image file and record number, e.g. data/t10k-images-idx3-ubyte.gz:0")
    p.add_argument("--show-input", metavar="PNG", default=None,
                   help="write the 28x28 image the model sees (after the MNIST-style preparation), scaled x8; "
                        "with several images, _1, _2... are added to the name")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("show", help="an MNIST record as the chapter's hexadecimal grid and as a picture")
    data_option(p)
    p.add_argument("--split", choices=["train", "test"], default="train", help="which file (default train)")
    p.add_argument("--index", type=int, default=0, help="record number (default 0, the chapter's '5')")
    p.add_argument("--out", help="also write the picture to this PNG file")
    p.add_argument("--augment", type=int, metavar="N", default=None,
                   help="draw records INDEX to INDEX+N-1 before and after the augmentation of cnn train --augment "
                        "(needs --out)")
    p.add_argument("--seed", type=int, default=2, help="the draws of --augment (default 2, cnn train's)")
    p.set_defaults(run=cmd_show)

    p = sub.add_parser("explain-conv", help="a small convolution number by number: cell by cell, as im2col times "
                                            "the filter, and (--backward) its gradients")
    p.add_argument("--image", default=DEFAULT_IMAGE,
                   help="rows separated by ';', channels by '|' (default: the chapter's 5x5 Figure 5-3 image)")
    p.add_argument("--filter", action="append", default=None,
                   help="rows separated by ';', channels by '|'; give --filter again for more filters "
                        "(default: one 3x3 vertical-edge filter)")
    p.add_argument("--stride", type=_explain_size, default=1, help="step between windows (default 1)")
    p.add_argument("--dilation", type=_explain_size, default=1, help="spacing of the filter's taps (default 1)")
    p.add_argument("--padding", type=_explain_padding, default=None,
                   help="zeros on every side (a number), or 'same' or 'valid' (default 1; with --transpose "
                        "'valid' or 'same', default 'valid')")
    p.add_argument("--backward", action="store_true",
                   help="also work out dL/dW and dL/dx from dL/dout (all ones unless --dout)")
    p.add_argument("--dout", default=None, help="dL/dout for --backward: rows by ';', filters by '|'")
    p.add_argument("--transpose", action="store_true",
                   help="a transposed convolution (Conv2DTranspose): each input value scattered through the "
                        "filters, the adjoint of the convolution")
    p.add_argument("--depthwise", action="store_true",
                   help="a depthwise convolution (DepthwiseConv2D): one single-channel filter per input channel "
                        "(or several: a depth multiplier), the channels never added")
    p.add_argument("--pointwise", default=None,
                   help="with --depthwise: the 1x1 mix that follows (SeparableConv2D), a matrix with a row per "
                        "depthwise channel and a column per output channel")
    p.add_argument("--groups", type=_explain_size, default=None,
                   help="a grouped convolution (Conv2D(groups=)): the channels in G contiguous groups, each filter "
                        "reading its own group's")
    p.set_defaults(run=cmd_explain_conv)

    p = sub.add_parser("visualize", help="PNGs of filters, feature maps, training curves and confusion")
    p.add_argument("model", help="a model file (.npz or .keras)")
    data_option(p)
    p.add_argument("--index", type=int, default=0, help="the test image whose feature maps are drawn (default 0)")
    p.add_argument("--n-test", type=int, default=None,
                   help="the first N test images for the confusion matrix (default: all, as cnn evaluate)")
    p.add_argument("--history", help="history JSON (default: MODEL's .history.json, if there)")
    p.add_argument("--out", default="pictures", help="folder for the PNG files (default: pictures)")
    p.set_defaults(run=cmd_visualize)

    p = sub.add_parser("explore", help="a page in the browser: draw a digit, watch every layer, click any cell, "
                                       "train live (every number from this engine)")
    p.add_argument("model", nargs="?", default=None,
                   help="a model file (default: the chapter's model, trained on the bundled data once and kept)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one, printed)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--cache", default=None, help="where the default model is kept (default ~/.cache/cnn-from-scratch)")
    p.set_defaults(run=cmd_explore)

    p = sub.add_parser("export", help="write a model as ONNX, for ONNX Runtime and the tools that read it")
    p.add_argument("model", help="a model file (.npz or .keras)")
    p.add_argument("out", help="the .onnx file to write")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("gradcheck", help="central-difference check of every layer, as a table")
    p.add_argument("--seed", type=int, default=0, help="for the random inputs and upstream gradients (default 0)")
    p.add_argument("--tolerance", type=float, default=1e-6,
                   help="the largest norm-wise relative error accepted per array (default 1e-6)")
    p.set_defaults(run=cmd_gradcheck)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `cnn` alone: what it can do
        parser.print_help()
        return 0
    for name in ("epochs", "batch_size", "n_train", "n_test", "index"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "index" else 1):
            parser.error(f"--{name.replace('_', '-')} must be {'>= 0' if name == 'index' else '>= 1'}")
    split = getattr(args, "validation_split", None)
    if split is not None and not 0 <= split < 1:
        parser.error("--validation-split must be in [0, 1)")
    try:
        return args.run(args) or 0
    except BrokenPipeError:  # e.g. `cnn show | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    except (CNNError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    except Exception as err:  # a bug of ours: still one line (CNN_DEBUG=1 shows the traceback)
        if os.environ.get("CNN_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {err} (this is a bug in cnn; CNN_DEBUG=1 shows where)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

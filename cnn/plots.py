"""The pictures of ``cnn train`` and ``cnn visualize`` (matplotlib, files only).

Each picture has a title that says what it shows, labelled axes, and a
colour bar whose scale is shared within a layer, so that magnitudes can be
compared between panels.
"""
import numpy as np

from .chapter import class_name as _name
from .errors import CNNError
from .metrics import confusion_matrix


class PlotError(CNNError):
    pass


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotError("pictures need matplotlib, which installing cnn-from-scratch installs: "
                        "pip install matplotlib (or reinstall: pip install cnn-from-scratch)") from None
    matplotlib.use("Agg")  # files only: no screen needed
    import matplotlib.pyplot as plt

    return plt


def history(curves, path):
    """Loss and accuracy per epoch, training and validation."""
    plt = pyplot()
    metric = next((k for k in ("acc", "accuracy", "sparse_categorical_accuracy", "categorical_accuracy")
                   if k in curves), None)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(curves["loss"]) + 1)
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], metric, "accuracy")):
        if key is None:
            ax.set_visible(False)
            continue
        ax.plot(epochs, curves[key], marker="o", markersize=3, label="training (mean over the epoch's batches)")
        if "val_" + key in curves:
            ax.plot(epochs, curves["val_" + key], marker="o", markersize=3, label="validation (after the epoch)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("loss per epoch")
    axes[1].set_title("accuracy per epoch")
    fig.suptitle("Training curves", fontsize=11)
    fig.text(0.5, 0.01, "Validation can look better than training: dropout is on while training and off when "
             "validating, and training figures average over an epoch in which the model was still improving.",
             ha="center", fontsize=7.5, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def filters(layer, path, max_filters=32):
    """A convolution's filters (channel 0 of each), on one colour scale."""
    plt = pyplot()
    kernel = layer.params["kernel"]  # (kh, kw, cin, filters)
    n = min(kernel.shape[-1], max_filters)
    cols = min(8, n)
    rows = -(-n // cols)
    limit = float(np.abs(kernel[:, :, 0, :n]).max()) or 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.25 + 1.2, rows * 1.35 + 1.1), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if k < n:
            image = ax.imshow(kernel[:, :, 0, k], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"filter {k}", fontsize=7)
        else:
            ax.axis("off")
    bar = fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    bar.set_label("weight (red +, blue -)", fontsize=8)
    extra = f", channel 0 of {kernel.shape[2]}" if kernel.shape[2] > 1 else ""
    fig.suptitle(f"{layer.name}: its {n} {kernel.shape[0]}x{kernel.shape[1]} filters{extra}, one colour scale "
                 f"(|w| up to {limit:.2f})", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def feature_maps(model, x, label, path, channels=8):
    """The input and each layer's feature maps (first channels), a shared colour
    scale per layer, with the prediction in the title."""
    plt = pyplot()
    from .layers import Dropout

    maps = []
    calls = model.trace(x)  # every layer's output, a chain or a graph
    for layer, _, act in calls:
        # dropout and augmentation are the identity at inference
        if act.ndim == 4 and not isinstance(layer, Dropout) and not type(layer).__name__.startswith("Random"):
            maps.append((layer, act[0]))
    probs = calls[-1][2][0]
    predicted = int(np.argmax(probs))
    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, channels, figsize=(channels * 1.25 + 1.6, rows * 1.45 + 0.9), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    axes[0, 0].axis("on")
    image = axes[0, 0].imshow(x[0, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[0, 0].set_title(f"input (a {label})", fontsize=7)
    fig.colorbar(image, ax=axes[0, :], fraction=0.02, pad=0.01).set_label("pixel", fontsize=7)
    axes[0, 2].text(0, 0.5, f"prediction: {predicted} ({_name(predicted)}), probability {probs[predicted]:.3f}",
                    fontsize=9, va="center", transform=axes[0, 2].transAxes)
    for r, (layer, fmap) in enumerate(maps, start=1):
        shown = min(channels, fmap.shape[-1])
        low, high = float(fmap[..., :shown].min()), float(fmap[..., :shown].max())
        for c in range(shown):
            axes[r, c].axis("on")
            image = axes[r, c].imshow(fmap[:, :, c], cmap="viridis", vmin=low, vmax=high if high > low else low + 1)
            axes[r, c].set_title(f"channel {c}", fontsize=6)
        axes[r, 0].set_ylabel(f"{layer.name}\n{fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]}", fontsize=7)
        fig.colorbar(image, ax=axes[r, :], fraction=0.02, pad=0.01).set_label("activation", fontsize=7)
    fig.suptitle(f"Feature maps of a test image through {model.name} (first {channels} channels of each layer; "
                 "one colour scale per layer)", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def augmented(before, after, labels, path, description):
    """A batch before (top row) and after (bottom row) augmentation;
    ``description`` says how, a line per layer."""
    plt = pyplot()
    n = len(before)
    lines = description.count("\n") + 2
    height = 3.0 + 0.18 * lines  # inches: two rows of digits and the title's lines
    fig, axes = plt.subplots(2, n, figsize=(max(n * 1.3 + 0.4, 7.5), height), squeeze=False)
    for k in range(n):
        for row, images in enumerate((before, after)):
            ax = axes[row, k]
            ax.imshow(images[k, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, k].set_title(f"{labels[k]} ({_name(labels[k])})", fontsize=7)
    axes[0, 0].set_ylabel("as read", fontsize=8)
    axes[1, 0].set_ylabel("augmented", fontsize=8)
    fig.suptitle(f"A training batch before and after augmentation (what fit sees in one epoch)\n{description}",
                 fontsize=8)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.02, top=1 - (0.18 * lines + 0.35) / height, hspace=0.25,
                        wspace=0.08)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion(labels, predicted, path, classes=10):
    """How many images of each true class went to each predicted class."""
    plt = pyplot()
    counts = confusion_matrix(labels, predicted, classes)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(counts, cmap="Blues")
    for t in range(classes):
        for p in range(classes):
            ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=7,
                    color="white" if counts[t, p] > counts.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).set_label("images", fontsize=8)
    right = int(np.trace(counts))
    ax.set_title(f"Confusion on {len(labels):,} test images: {right:,} right ({right / len(labels) * 100:.2f}%)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return counts

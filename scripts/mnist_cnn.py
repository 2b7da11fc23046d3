"""The chapter's program, mnist_cnn.py, on this engine.

Trains the 784-32-64-100-10 CNN on the first 1,000 MNIST training images for
50 epochs (batch 128, Adadelta with learning rate 1.0), tests it on the first
100 test images as the chapter does and on all 10,000 as an honest figure,
saves the model, and classifies the chapter's made-up digit.

    python scripts/mnist_cnn.py            # the chapter's settings
    python scripts/mnist_cnn.py --help     # data, epochs, seed, output folder
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cnn  # noqa: E402
from cnn.chapter import LABELS, EpochLogger, build_model, made_up_digit  # noqa: E402,F401
from cnn.data import find_mnist_file, load_mnist, one_hot, read_text, to_model_input  # noqa: E402
from cnn.images import write_png  # noqa: E402
from scripts.preprocess import convert  # noqa: E402


def load_text_split(data, out, split, count):
    """The chapter's route: first ``count`` IDX records -> text file -> arrays."""
    text = out / f"mnist_{split}_{count}.txt"
    convert(find_mnist_file(data, split, "images"), find_mnist_file(data, split, "labels"), text, count)
    images, labels = read_text(text)
    return to_model_input(images), one_hot(labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description="The chapter's MNIST CNN on this engine.")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="folder with the four MNIST IDX files")
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="folder for the text files, model and picture")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2, help="the engine's seed (the chapter's framework seed)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    np.random.seed(1)        # the chapter's NumPy seed (the engine itself does not use it)
    cnn.set_seed(args.seed)  # weights, dropout and shuffling
    args.out.mkdir(parents=True, exist_ok=True)

    print(f"Loading {args.n_train} training and {args.n_test} test images from {args.data}")
    train_x, train_y = load_text_split(args.data, args.out, "train", args.n_train)
    test_x, test_y = load_text_split(args.data, args.out, "test", args.n_test)

    print("Creating a 784-(32-64)-100-10 CNN")
    model = build_model()
    model.summary()

    print(f"Starting training: {args.epochs} epochs, batch size {args.batch_size} "
          "(each line: the training loss and accuracy, averaged over that epoch's batches)")
    model.fit(train_x, train_y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
              callbacks=[EpochLogger(args.epochs // 5, last=args.epochs - 1)], shuffle=True)
    print("Training complete")

    loss, acc = model.evaluate(test_x, test_y)
    print(f"Test data loss = {loss:0.4f} accuracy = {acc * 100:0.2f}%")
    (_, _), (full_x, full_labels) = load_mnist(args.data)
    full_loss, full_acc = model.evaluate(full_x, one_hot(full_labels), batch_size=500)
    print(f"Full test set ({len(full_x):,} images): loss = {full_loss:0.4f} accuracy = {full_acc * 100:0.2f}%")

    model_path = args.out / "mnist_model.npz"
    model.save(model_path)
    print(f"Model saved to {model_path}")

    image = made_up_digit()
    # The chapter fed raw 0..255 pixels here; the model was trained on pixels / 255.
    probs = model.predict((image / 255.0).reshape(1, 28, 28, 1).astype(np.float32))[0]
    png = args.out / "made_up_digit.png"
    guess = LABELS[int(probs.argmax())]
    write_png(png, (255 - image).astype(np.uint8), scale=8,  # gray_r: ink is dark
              caption=f"The chapter's made-up digit: a stroke in column 9\nand a diagonal. The chapter's model "
                      f"read a 6;\nthis one reads {guess} ({probs.max():.2f}).")
    print(f"Made-up digit drawn to {png}")
    np.set_printoptions(precision=4, suppress=True)
    print("Predicting the made-up digit (pixels / 255, as in training)")
    print(f"Probabilities: {probs}")
    print(f"Predicted digit: {LABELS[int(probs.argmax())]} ({probs.max():0.4f})")
    print(f"Wall time: {time.perf_counter() - started:0.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The chapter's protocol in this engine and in Keras 3, over several seeds.

    python benchmarks/accuracy_parity.py [--seeds 5] [--epochs 50] [--json out.json]

Each seed trains the chapter's model on the first 1,000 training images for
50 epochs (batch 128, Adadelta lr 1.0, shuffled each epoch) in each framework,
then measures accuracy on the chapter's 100 test images and on all 10,000.
Prints a Markdown table of mean and standard deviation, and whether the
engine's mean lies within one standard deviation of Keras's. Needs the test
extra (Keras + TensorFlow CPU).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import cnn  # noqa: E402
from cnn.data import load_mnist, one_hot  # noqa: E402
from scripts.mnist_cnn import build_model  # noqa: E402


def keras_chapter_model(keras):
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(100, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", metrics=["acc"],
                  optimizer=keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "accuracy_parity.json",
                        help="where the result goes (default benchmarks/results/accuracy_parity.json; the README's table "
                             "is written from it by scripts/speed_tables.py)")
    args = parser.parse_args(argv)
    import keras

    (x, y), (xt, yt) = load_mnist()
    x, y = x[:1000], one_hot(y[:1000])
    yt = one_hot(yt)
    results = {"engine": [], "keras": []}
    for seed in range(1, args.seeds + 1):
        for name in ("engine", "keras"):
            started = time.perf_counter()
            if name == "engine":
                cnn.set_seed(seed)
                model = build_model()
                model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=0)
                acc100 = model.evaluate(xt[:100], yt[:100])[1]
                acc_all = model.evaluate(xt, yt, batch_size=500)[1]
            else:
                keras.utils.set_random_seed(seed)
                model = keras_chapter_model(keras)
                model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=0, shuffle=True)
                acc100 = model.evaluate(xt[:100], yt[:100], verbose=0)[1]
                acc_all = model.evaluate(xt, yt, batch_size=500, verbose=0)[1]
            seconds = time.perf_counter() - started
            results[name].append({"seed": seed, "acc100": float(acc100), "acc10000": float(acc_all), "seconds": seconds})
            print(f"seed {seed} {name:6s}: {acc100 * 100:6.2f}% on 100, {acc_all * 100:6.2f}% on 10,000 ({seconds:.0f} s)", flush=True)

    print()
    print("| | 100 test images: mean ± sd | 10,000 test images: mean ± sd | seconds per run |")
    print("| --- | --- | --- | --- |")
    summary = {}
    for name in ("engine", "keras"):
        runs = results[name]
        row = {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs], ddof=1)))
               for k in ("acc100", "acc10000", "seconds")}
        summary[name] = row
        print(f"| {'this engine' if name == 'engine' else 'Keras 3 (TF CPU)'} "
              f"| {row['acc100'][0] * 100:.2f}% ± {row['acc100'][1] * 100:.2f} "
              f"| {row['acc10000'][0] * 100:.2f}% ± {row['acc10000'][1] * 100:.2f} "
              f"| {row['seconds'][0]:.0f} |")
    for key, label in (("acc100", "100"), ("acc10000", "10,000")):
        gap = abs(summary["engine"][key][0] - summary["keras"][key][0])
        within = gap <= summary["keras"][key][1]
        print(f"on {label}: engine mean {'within' if within else 'NOT within'} one Keras sd "
              f"(gap {gap * 100:.2f} points, Keras sd {summary['keras'][key][1] * 100:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()

"""LeNet-5 on Fashion-MNIST (or any folder of the four IDX files), or the
ResNet-8 of cnn.architectures, in this engine and in Keras 3 with the same
protocol, over several seeds.

    python benchmarks/lenet5_accuracy.py [--arch lenet5|resnet] [--data /usr/share/datasets/fashion-mnist]
        [--seeds 3] [--epochs 3] [--json out.json]

Protocol, the same in both: the architecture function of cnn.architectures
called with each API (LeNet-5: tanh 5x5 convolutions, 2x2 average pooling,
dense 120-84-10; ResNet-8: a functional model, one basic block a stage), Adam with
Keras's defaults, sparse categorical cross-entropy, batch 128, shuffled each
epoch, all training images, then accuracy on the whole test set. Each
framework draws its own initial weights from the seed (different generators:
the runs are independent samples of the same procedure). Prints a Markdown
table of mean and standard deviation per framework, the CPU, and the wall
time. Needs the test extra (Keras + TensorFlow CPU); Debian's
``dataset-fashion-mnist`` package installs the data.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import cnn  # noqa: E402
from cnn.architectures import lenet5, resnet8  # noqa: E402
from cnn.data import load_mnist  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")


ARCHS = {"lenet5": lenet5, "resnet": resnet8}


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="lenet5")
    parser.add_argument("--data", type=Path, default=FASHION)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None,
                        help="where the result goes (default benchmarks/results/<arch>_accuracy.json; the README's "
                             "table is written from it by scripts/speed_tables.py)")
    args = parser.parse_args(argv)
    args.json = args.json or Path(__file__).resolve().parent / "results" / f"{args.arch}_accuracy.json"
    build = ARCHS[args.arch]
    import keras

    (x, y), (xt, yt) = load_mnist(args.data)
    y, yt = y.astype(np.int64), yt.astype(np.int64)
    results = {"engine": [], "keras": []}
    seconds = {"engine": 0.0, "keras": 0.0}
    for seed in range(1, args.seeds + 1):
        started = time.perf_counter()
        cnn.set_seed(seed)
        model = build()
        model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=0)
        results["engine"].append(model.evaluate(xt, yt, batch_size=500)[1])
        seconds["engine"] += time.perf_counter() - started

        started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        reference = build(api=keras)  # the same function, with Keras as the API
        reference.fit(x, y, batch_size=128, epochs=args.epochs, verbose=0)
        results["keras"].append(float(reference.evaluate(xt, yt, batch_size=500, verbose=0)[1]))
        seconds["keras"] += time.perf_counter() - started
        print(f"seed {seed}: engine {results['engine'][-1] * 100:.2f}%  keras {results['keras'][-1] * 100:.2f}%",
              flush=True)

    print(f"\n{args.arch}, {args.data.name}: {len(x):,} training / {len(xt):,} test images, {args.epochs} epochs, "
          f"{args.seeds} seeds; CPU {cpu_model()}, {os.cpu_count()} cores\n")
    print("| framework | test accuracy, mean | sd | per seed | training time, s (all seeds) |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("engine", "keras"):
        values = np.array(results[name]) * 100
        sd = values.std(ddof=1) if len(values) > 1 else float("nan")
        print(f"| {name} | {values.mean():.2f}% | {sd:.2f} | {' / '.join(f'{v:.2f}' for v in values)} "
              f"| {seconds[name]:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"arch": args.arch, "results": results, "seconds": seconds,
                                         "epochs": args.epochs, "data": str(args.data), "train_images": len(x),
                                         "date": time.strftime("%Y-%m-%d"), "cpu": cpu_model()}, indent=1) + "\n")


if __name__ == "__main__":
    main()

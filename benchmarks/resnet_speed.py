"""ResNet-20 (He et al.'s, for 32x32x3 images) in this engine, Keras 3 and PyTorch, in one run.

    python benchmarks/resnet_speed.py [--images 1024] [--epochs 5] [--json out.json] [--allow-busy]

The same model in each: ``cnn.architectures.resnet(depth=20)`` here and, from
the same function, in Keras (``api=keras``); in PyTorch the same layers
written with ``torch.nn`` (3x3 convolutions without bias, BatchNorm with
Keras's momentum and epsilon, 1x1 projection shortcuts, global average
pooling, a dense softmax layer), channels-last as in ``conv_layers.py``, Adam.
Each framework runs in its own subprocess on the same random 32x32x3 images
and labels (speed does not depend on what the pixels show): one warm-up
epoch (its time, with the first call's compilation, reported apart), then
``--epochs`` timed ones as training images per second, batch 128; then batch
inference, batch 500, as images per second (after one untimed call). Ratios above 1 mean the engine
is faster; they are printed only when other programs kept at most a tenth
of a core busy (``--allow-busy`` prints them anyway, marked). The result goes
to ``benchmarks/results/resnet20-speed-<kind>.json``.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _data(n):
    rng = np.random.default_rng(0)
    return rng.random((n, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, n)


def _measure(train_epoch, predict, x, y, epochs):
    start = time.perf_counter()
    train_epoch(x, y)
    warm_up = time.perf_counter() - start
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch(x, y)
        rates.append(len(x) / (time.perf_counter() - start))
    predict(x[:500])  # the first inference call compiles (numba's kernels, Keras's predict function)
    start = time.perf_counter()
    predict(x)
    inference = len(x) / (time.perf_counter() - start)
    return {"warm_up_epoch_s": warm_up, "train_images_per_s": float(np.median(rates)),
            "train_runs": rates, "inference_images_per_s": inference}


def worker_engine(x, y, epochs):
    import cnn
    from cnn.architectures import resnet

    cnn.set_seed(0)
    model = resnet(depth=20)
    return _measure(lambda a, b: model.fit(a, b, batch_size=128, epochs=1, verbose=0),
                    lambda a: model.predict(a, batch_size=500), x, y, epochs)


def worker_keras(x, y, epochs):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from cnn.architectures import resnet

    keras.utils.set_random_seed(0)
    model = resnet(depth=20, api=keras)
    return _measure(lambda a, b: model.fit(a, b, batch_size=128, epochs=1, verbose=0),
                    lambda a: model.predict(a, batch_size=500, verbose=0), x, y, epochs)


def worker_torch(x, y, epochs):
    import torch
    from torch import nn

    from conv_layers import TORCH_LAYOUT

    torch.manual_seed(0)

    def conv_bn(cin, cout, stride):
        # Keras's BatchNormalization: momentum 0.99 (PyTorch counts 1 - momentum), epsilon 1e-3
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(*conv_bn(cin, cout, stride), nn.ReLU(), *conv_bn(cout, cout, 1))
            self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))

        def forward(self, t):
            return torch.relu(self.body(t) + self.shortcut(t))

    blocks, cin = [], 16
    for stage, cout in enumerate((16, 32, 64)):
        for block in range(3):
            blocks.append(Block(cin, cout, 2 if stage > 0 and block == 0 else 1))
            cin = cout
    model = nn.Sequential(*conv_bn(3, 16, 1), nn.ReLU(), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(64, 10))
    layout = torch.channels_last if TORCH_LAYOUT == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=layout)
    labels = torch.from_numpy(y.astype(np.int64))

    def train_epoch(_, __):
        model.train()
        order = torch.randperm(len(images))
        for start in range(0, len(images), 128):
            idx = order[start:start + 128]
            optimizer.zero_grad()
            loss_fn(model(images[idx]), labels[idx]).backward()
            optimizer.step()

    def predict(_):
        model.eval()
        with torch.no_grad():
            for start in range(0, len(images), 500):
                torch.softmax(model(images[start:start + 500]), dim=1)

    return _measure(train_epoch, predict, x, y, epochs)


WORKERS = {"engine": worker_engine, "keras": worker_keras, "pytorch": worker_torch}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after the warm-up (default 5)")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKERS), default=sorted(WORKERS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--allow-busy", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    x, y = _data(args.images)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](x, y, args.epochs)))
        return
    import machine

    rec = machine.record(peers=["keras", "tensorflow", "torch"])
    results = {}
    for name in args.only:
        command = [sys.executable, __file__, "--worker", name, "--images", str(args.images),
                   "--epochs", str(args.epochs)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            results[name] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        else:
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: done", flush=True)
    machine.finish(rec)
    print(machine.describe(rec))
    shown = not rec["busy"] or args.allow_busy
    engine = results.get("engine", {})
    print(f"{'ResNet-20, 32x32x3':28s} {'train img/s':>12s} {'inference img/s':>16s} {'warm-up epoch s':>16s}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:28s} failed: {r['error']}")
            continue
        print(f"{name:28s} {r['train_images_per_s']:12.0f} {r['inference_images_per_s']:16.0f} "
              f"{r['warm_up_epoch_s']:16.1f}")
    for name, r in results.items():
        if name != "engine" and "error" not in r and "error" not in engine and engine and shown:
            print(f"engine vs {name}: training {engine['train_images_per_s'] / r['train_images_per_s']:.2f}x, "
                  f"inference {engine['inference_images_per_s'] / r['inference_images_per_s']:.2f}x"
                  + (" (busy machine)" if rec["busy"] else ""))
    target = args.json or ROOT / "benchmarks" / "results" / f"resnet20-speed-{machine.kind(rec['cpu'])}.json"
    target.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "kind": machine.kind(rec["cpu"]),
                                  "command": " ".join(["python", "benchmarks/resnet_speed.py", *sys.argv[1:]]),
                                  "images": args.images, "epochs": args.epochs, "machine": rec,
                                  "results": results}, indent=1) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()

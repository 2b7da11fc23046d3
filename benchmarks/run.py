"""Speed of this engine against Keras 3 (TensorFlow CPU) and PyTorch CPU, in one run.

    python benchmarks/run.py [--epochs 7] [--threads N] [--only engine keras pytorch] [--json out.json]

Each framework runs in its own subprocess (so each has its own peak memory)
on the chapter's model and data, one after the other on the same machine:

* chapter training: 1,000 images, batch 128, one warm-up epoch, then the
  median epoch of ``--epochs`` timed ones, as images per second;
* training at scale: one epoch of Fashion-MNIST's 60,000 images, when
  Debian's ``dataset-fashion-mnist`` is installed (else reported missing);
* single-image prediction latency: median and 99th percentile over many
  calls, each framework called the fastest way it allows;
* batch inference: images per second on 10,000 test images, batch 500;
* peak resident memory of the process: after the chapter's training (imports,
  data and training), and at the end of the whole run (which adds batch
  inference and the Fashion-MNIST epoch);
* start-up: interpreter start to the end of the first trained batch (for the
  engine with numba's cache cold and warm);
* the engine's effective GFLOP/s in training against a large float32 GEMM
  measured in the same run.

PyTorch gets its data as NCHW tensors made before any timing, as its users
keep theirs. A peer that is not installed is reported as missing, never estimated. The
figures that carry from one machine to another are the ratios.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")
# multiply-adds x 2 of one forward pass of the chapter's model, per image;
# training costs about three times that (forward, and two GEMMs backward)
FORWARD_FLOP = 2 * (28 * 28 * 9 * 32 + 28 * 28 * 288 * 64 + 12544 * 100 + 100 * 10)
TRAIN_FLOP = 3 * FORWARD_FLOP


# ---------------------------------------------------------------- workers
def _data():
    sys.path.insert(0, str(ROOT))
    from cnn.data import load_mnist, one_hot

    (x, y), (xt, yt) = load_mnist(ROOT / "data")
    return x[:1000], one_hot(y[:1000]), xt, one_hot(yt)


def _fashion():
    if not FASHION.is_dir():
        return None
    from cnn.data import load_mnist, one_hot

    (x, y), _ = load_mnist(FASHION)
    return x, one_hot(y)


def _latency(call, x1, repeat):
    for _ in range(20):
        call(x1)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(x1)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_ms": statistics.median(times) * 1e3, "p99_ms": times[int(0.99 * (len(times) - 1))] * 1e3}


def _measure(train_epoch, train_one_batch, predict_one, predict_batch, epochs, repeat, started, prepare=None):
    """``prepare(x, y)`` turns arrays into the framework's own inputs, once,
    before any timing (PyTorch's NCHW tensors), as its users would."""
    prepare = prepare or (lambda x, y: (x, y))
    x, y, xt, yt = _data()
    x, y = prepare(x, y)
    xt, yt = prepare(xt, yt)
    result = {}
    train_one_batch(x[:128], y[:128])
    result["first_batch_s"] = time.time() - started  # process launch to the first trained batch
    train_epoch(x, y)  # warm-up
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        train_epoch(x, y)
        times.append(time.perf_counter() - t)
    result["train_images_per_s"] = len(x) / statistics.median(times)
    # the process's peak so far: imports, the data, and training the chapter's model
    result["train_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["latency"] = _latency(predict_one, xt[:1], repeat)
    t = time.perf_counter()
    predict_batch(xt)
    result["inference_images_per_s"] = len(xt) / (time.perf_counter() - t)
    fashion = _fashion()
    if fashion is not None:
        fashion = prepare(*fashion)
        t = time.perf_counter()
        train_epoch(*fashion)
        result["fashion_epoch_s"] = time.perf_counter() - t
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def worker_engine(args, started):
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import cnn
    from cnn.chapter import build_model
    from kernels import parallel

    if args.threads:
        parallel.set_workers(args.threads)
    cnn.set_seed(1)
    model = build_model()

    def train_epoch(x, y):
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)

    def train_one_batch(x, y):
        model.train_on_batch(x, y)

    result = _measure(train_epoch, train_one_batch, lambda x1: model.predict(x1),
                      lambda xt: model.predict(xt, batch_size=500), args.epochs, args.repeat, started)
    # the same machine's large-GEMM peak, measured here, for the effective-throughput ratio
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(5):
        a @ a
    result["gemm_peak_gflops"] = 5 * 2 * 4096**3 / (time.perf_counter() - t) / 1e9
    result["train_gflops"] = result["train_images_per_s"] * TRAIN_FLOP / 1e9
    return result


def worker_keras(args, started):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(1)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(32, 3, padding="same", activation="relu"), L.Conv2D(64, 3, padding="same", activation="relu"),
        L.MaxPooling2D(2), L.Dropout(0.25), L.Flatten(), L.Dense(100, activation="relu"), L.Dropout(0.5),
        L.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adadelta(1.0), metrics=["acc"])
    serve = tf.function(lambda x: model(x, training=False), jit_compile=False)  # the fastest single call

    def train_epoch(x, y):
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)

    return _measure(train_epoch, lambda x, y: model.train_on_batch(x, y), lambda x1: serve(x1).numpy(),
                    lambda xt: model.predict(xt, batch_size=500, verbose=0), args.epochs, args.repeat, started)


def worker_torch(args, started):
    import numpy as np
    import torch
    from torch import nn

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(12544, 100), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(100, 10))
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()

    def to_tensors(x, y):
        # once, before any timing: PyTorch's layout (NCHW) and class indices, as its users keep their data
        return (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
                torch.from_numpy(np.ascontiguousarray(y.argmax(1))))

    def train_one_batch(xb, yb):
        model.train()
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()

    def train_epoch(x, y):
        order = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
        for s in range(0, len(x), 128):
            batch = order[s:s + 128]
            train_one_batch(x[batch], y[batch])

    def predict(x, batch=500):
        model.eval()
        with torch.inference_mode():
            return torch.cat([torch.softmax(model(x[s:s + batch]), 1) for s in range(0, len(x), batch)])

    return _measure(train_epoch, train_one_batch, lambda x1: predict(x1), predict, args.epochs, args.repeat, started,
                    prepare=to_tensors)


WORKERS = {"engine": worker_engine, "keras": worker_keras, "pytorch": worker_torch}
IMPORTS = {"engine": "numba", "keras": "keras", "pytorch": "torch"}


# ---------------------------------------------------------------- orchestration
def run_worker(name, args, env=None):
    command = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs), "--repeat", str(args.repeat),
               *(["--threads", str(args.threads)] if args.threads else [])]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=3600)
    if result.returncode != 0:
        missing = f"No module named '{IMPORTS[name]}'" in result.stderr
        return {"missing": True} if missing else {"error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def fmt(value, spec):
    return "missing" if value is None else format(value, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 7, not 3: Keras's median over 3 of these 8-batch epochs moved between
    # 1508 and 2040 images/s from one run to the next on the same machine
    parser.add_argument("--epochs", type=int, default=7, help="timed epochs after the warm-up (default 7)")
    parser.add_argument("--repeat", type=int, default=300, help="single-image calls timed (default 300)")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKERS), default=sorted(WORKERS))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of the engine and of each peer alike (default: each its own, every core)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        launched = float(os.environ.get("BENCH_T0", time.time()))  # set by the parent just before launch
        print(json.dumps(WORKERS[args.worker](args, launched)))
        return 0

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import machine as machine_record

    record = machine_record.record(peers=["keras", "tensorflow", "torch"], threads=args.threads)
    results = {}
    for name in args.only:
        if name == "engine":
            with tempfile.TemporaryDirectory() as cache:  # numba's cache cold, then warm
                env = {"NUMBA_CACHE_DIR": cache}
                cold = run_worker(name, args, {**env, "BENCH_T0": str(time.time())})
                results[name] = run_worker(name, args, {**env, "BENCH_T0": str(time.time())})
                results[name]["first_batch_cold_s"] = cold.get("first_batch_s")
        else:
            results[name] = run_worker(name, args, {"BENCH_T0": str(time.time())})
        print(f"{name}: done", file=sys.stderr, flush=True)

    engine = results.get("engine", {})
    rows = [
        ("chapter training, images/s", lambda r: r.get("train_images_per_s"), ".0f", True),
        ("Fashion-MNIST epoch (60,000), s", lambda r: r.get("fashion_epoch_s"), ".1f", False),
        ("single-image predict, median ms", lambda r: r.get("latency", {}).get("median_ms"), ".3f", False),
        ("single-image predict, p99 ms", lambda r: r.get("latency", {}).get("p99_ms"), ".3f", False),
        ("batch inference, images/s", lambda r: r.get("inference_images_per_s"), ".0f", True),
        ("peak memory while training, MB", lambda r: r.get("train_peak_rss_mb"), ".0f", False),
        ("peak memory, whole run, MB", lambda r: r.get("peak_rss_mb"), ".0f", False),
        ("start to first trained batch, s", lambda r: r.get("first_batch_s"), ".2f", False),
    ]
    names = list(results)
    lines = ["| workload | " + " | ".join(names) + " | " + " | ".join(f"engine vs {n}" for n in names if n != "engine") + " |",
             "| --- " * (1 + len(names) + len(names) - 1) + "|"]
    for label, get, spec, higher_better in rows:
        values = [None if ("missing" in results[n] or "error" in results[n]) else get(results[n]) for n in names]
        ratios = []
        for n, v in zip(names, values):
            if n == "engine":
                continue
            mine = get(engine) if engine and "error" not in engine else None
            if mine is None or v is None:
                ratios.append("-")
            else:
                ratios.append(f"{(mine / v if higher_better else v / mine):.2f}x")
        lines.append(f"| {label} | " + " | ".join(fmt(v, spec) for v in values) + " | " + " | ".join(ratios) + " |")
    lines.append("")
    lines.append("Ratios: how many times better the engine is (above 1) or worse (below 1).")
    if engine.get("first_batch_cold_s") is not None:
        lines.append(f"Engine start-up to first trained batch: {engine['first_batch_cold_s']:.2f} s with numba's "
                     f"cache cold, {engine['first_batch_s']:.2f} s warm.")
    if engine.get("train_gflops"):
        lines.append(f"Engine training: {engine['train_gflops']:.1f} GFLOP/s effective, "
                     f"{engine['train_gflops'] / engine['gemm_peak_gflops'] * 100:.0f}% of a 4096^3 float32 GEMM "
                     f"measured at {engine['gemm_peak_gflops']:.0f} GFLOP/s in the same run.")
    for n in names:
        if "missing" in results[n]:
            lines.append(f"{n}: not installed (pip install -e '.[bench]').")
        elif "error" in results[n]:
            lines.append(f"{n}: failed: {results[n]['error']}")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    lines.append(f"Machine: {machine}.")
    lines.append(machine_record.describe(machine_record.finish(record)))
    table = "\n".join(lines)
    print(table)
    args.json.write_text(json.dumps({"machine": machine, "record": record, "results": results, "table": table},
                                    indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

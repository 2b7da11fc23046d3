"""Speed of this engine against Keras 3 (TensorFlow CPU) and PyTorch CPU, in one run.

    python benchmarks/run.py [--epochs 7] [--repeats 3] [--threads N] [--only engine keras pytorch]
                             [--json out.json] [--allow-busy]

Each framework runs in its own subprocess (so each has its own peak memory)
on the chapter's model and data, one after the other on the same machine:

* chapter training: 1,000 images, batch 128, one warm-up epoch, then
  ``--epochs`` timed ones, as images per second;
* training at scale: ``--repeats`` epochs of Fashion-MNIST's 60,000 images,
  when Debian's ``dataset-fashion-mnist`` is installed (else reported missing);
* single-image prediction latency: median and 99th percentile over many
  calls, each framework called the fastest way it allows;
* batch inference: images per second on 10,000 test images, batch 500,
  ``--repeats`` times;
* memory: the process's peak resident size after the chapter's training
  (imports, data and training), the same less the size after the imports and
  the model (what training itself takes), and the peak of the whole run
  (which adds batch inference and the Fashion-MNIST epochs);
* start-up: interpreter start to the end of the first trained batch (for the
  engine with numba's cache cold and warm);
* the engine's effective GFLOP/s in training against a large float32 GEMM
  measured in the same run.

Every repeated figure is kept as min / median / max; the tables show the
median. PyTorch runs channels-last (``torch.channels_last``) with its tensors
made before any timing, as in ``conv_layers.py`` (see TORCH_LAYOUT there).
A peer that is not installed is reported as missing, never estimated. The
figures that carry from one machine to another are the ratios, and they are
printed only when other programs kept at most a tenth of a core busy during
the run (``--allow-busy`` prints them anyway, marked).

The result goes to ``benchmarks/results/run-<kind>.json``, one file per CPU
kind (``machine.kind``: avx2, avx512, avx512-amx), the latest run of each;
``scripts/speed_tables.py`` writes the README's tables from those files.
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


def _spread(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": len(values)}


def _rss_now_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _measure(train_epoch, train_one_batch, predict_one, predict_batch, epochs, repeat, started, prepare=None,
             repeats=3):
    """``prepare(x, y)`` turns arrays into the framework's own inputs, once,
    before any timing (PyTorch's tensors), as its users would."""
    prepare = prepare or (lambda x, y: (x, y))
    result = {"rss_after_imports_mb": _rss_now_mb()}  # the framework imported, the model built
    x, y, xt, yt = _data()
    x, y = prepare(x, y)
    xt, yt = prepare(xt, yt)
    train_one_batch(x[:128], y[:128])
    result["first_batch_s"] = time.time() - started  # process launch to the first trained batch
    train_epoch(x, y)  # warm-up
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        train_epoch(x, y)
        times.append(time.perf_counter() - t)
    result["train_images_per_s"] = _spread([len(x) / t for t in times])
    # the process's peak so far: imports, the data, and training the chapter's model
    result["train_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["train_above_imports_mb"] = result["train_peak_rss_mb"] - result["rss_after_imports_mb"]
    result["latency"] = _latency(predict_one, xt[:1], repeat)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        predict_batch(xt)
        rates.append(len(xt) / (time.perf_counter() - t))
    result["inference_images_per_s"] = _spread(rates)
    fashion = _fashion()
    if fashion is not None:
        fashion = prepare(*fashion)
        seconds = []
        for _ in range(repeats):
            t = time.perf_counter()
            train_epoch(*fashion)
            seconds.append(time.perf_counter() - t)
        result["fashion_epoch_s"] = _spread(seconds)
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
                      lambda xt: model.predict(xt, batch_size=500), args.epochs, args.repeat, started,
                      repeats=args.repeats)
    # the same machine's large-GEMM peak, measured here, for the effective-throughput ratio
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(5):
        a @ a
    result["gemm_peak_gflops"] = 5 * 2 * 4096**3 / (time.perf_counter() - t) / 1e9
    result["train_gflops"] = result["train_images_per_s"]["median"] * TRAIN_FLOP / 1e9
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
                    lambda xt: model.predict(xt, batch_size=500, verbose=0), args.epochs, args.repeat, started,
                    repeats=args.repeats)


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

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from conv_layers import TORCH_LAYOUT

    if TORCH_LAYOUT == "channels_last":
        model = model.to(memory_format=torch.channels_last)

    def to_tensors(x, y):
        # once, before any timing: PyTorch's layout and class indices, as its users keep their data
        images = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW shape over NHWC memory: channels-last
        images = images.contiguous(memory_format=torch.channels_last if TORCH_LAYOUT == "channels_last"
                                   else torch.contiguous_format)
        return images, torch.from_numpy(np.ascontiguousarray(y.argmax(1)))

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
                    prepare=to_tensors, repeats=args.repeats)


WORKERS = {"engine": worker_engine, "keras": worker_keras, "pytorch": worker_torch}
IMPORTS = {"engine": "numba", "keras": "keras", "pytorch": "torch"}


# ---------------------------------------------------------------- orchestration
def run_worker(name, args, env=None):
    command = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs), "--repeat", str(args.repeat),
               "--repeats", str(args.repeats), *(["--threads", str(args.threads)] if args.threads else [])]
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
    parser.add_argument("--repeats", type=int, default=3,
                        help="batch-inference runs and Fashion-MNIST epochs timed (default 3)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where the result goes (default benchmarks/results/run-<CPU kind>.json)")
    parser.add_argument("--allow-busy", action="store_true",
                        help="print and keep the ratios even when other programs kept the machine busy")
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

    record = machine_record.finish(record)
    document = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
                "kind": machine_record.kind(record["cpu"]), "record": record, "results": results}
    sys.path.insert(0, str(ROOT / "scripts"))
    from speed_tables import run_table

    if record.get("busy") and not args.allow_busy:
        print(machine_record.describe(record))
        print(f"no ratios: other programs kept {record['other_cores_busy']:.2f} cores busy during the run "
              "(more than 0.1); run again on a quiet machine, or --allow-busy to print and keep them marked")
        document["refused"] = True
    else:
        print(run_table(document))
    target = args.json or ROOT / "benchmarks" / "results" / f"run-{document['kind']}.json"
    if "error" in results.get("engine", {}):
        print("the engine's run failed: no result file written")
        document["refused"] = True
    if not document.get("refused"):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=1) + "\n")
        print(f"written to {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

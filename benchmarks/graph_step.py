"""What the graph runner costs: the chapter's model as a Sequential against the
same layers as a functional model (``cnn.Model(seq.input, seq.output)``), in
one process, one step of each in turn.

    python benchmarks/graph_step.py [--steps 60] [--json out.json] [--allow-busy]

Timed, each as the median over ``--steps`` alternating calls (min and max
kept): a training step (``train_on_batch``) on 128 images, batch inference on
500 images (``predict``), and one image (``model(x)``). Both models run the
same layers with the same weights, so the difference is the runner alone
(the graph's node walk, its gradient bookkeeping and its fusion plan against
the Sequential's two loops). The ratio graph / Sequential is printed only
when other programs kept at most a tenth of a core busy (``--allow-busy``
prints it anyway, marked). The result goes to
``benchmarks/results/graph-step-<kind>.json``.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed calls of each kind per model (default 60)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--allow-busy", action="store_true")
    args = parser.parse_args(argv)

    import machine

    import cnn
    from cnn.architectures import chapter
    from cnn.data import load_mnist_split

    rec = machine.record()
    x, labels = load_mnist_split(None, "train", 500)
    y = np.eye(10, dtype=np.float32)[labels]
    cnn.set_seed(1)
    sequential = chapter()
    sequential.build((28, 28, 1))
    graph = cnn.Model(sequential.input, sequential.output)  # the same layers, the same weights
    for model in (sequential, graph):
        model.compile(loss="categorical_crossentropy", optimizer="adadelta", metrics=["accuracy"])
    kinds = {
        "training step, batch 128": lambda m: m.train_on_batch(x[:128], y[:128]),
        "batch inference, 500 images": lambda m: m.predict(x, batch_size=500),
        "one image": lambda m: m(x[:1]),
    }
    results = {}
    for name, call in kinds.items():
        for model in (sequential, graph):  # warm-up: numba's compilation, buffers
            for _ in range(3):
                call(model)
        times = {"sequential": [], "graph": []}
        for _ in range(args.steps):
            times["sequential"].append(_timed(lambda: call(sequential)))
            times["graph"].append(_timed(lambda: call(graph)))
        results[name] = {k: {"min_ms": 1e3 * min(v), "median_ms": 1e3 * float(np.median(v)),
                             "max_ms": 1e3 * max(v)} for k, v in times.items()}
        results[name]["graph_over_sequential"] = results[name]["graph"]["median_ms"] / \
            results[name]["sequential"]["median_ms"]
    machine.finish(rec)
    print(machine.describe(rec))
    print(f"{'':30s} {'Sequential ms':>14s} {'graph ms':>10s} {'graph / Sequential':>19s}")
    for name, r in results.items():
        ratio = r["graph_over_sequential"]
        shown = f"{ratio:.3f}" if not rec["busy"] or args.allow_busy else "(busy: not shown)"
        print(f"{name:30s} {r['sequential']['median_ms']:14.3f} {r['graph']['median_ms']:10.3f} "
              f"{shown + (' (busy)' if rec['busy'] and args.allow_busy else ''):>19s}")
    target = args.json or ROOT / "benchmarks" / "results" / f"graph-step-{machine.kind(rec['cpu'])}.json"
    target.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "kind": machine.kind(rec["cpu"]),
                                  "machine": rec, "steps": args.steps, "results": results}, indent=1) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()

"""Where a training step's time goes, layer by layer, for a named model.

    python benchmarks/profile_step.py [--arch chapter|lenet5|small_vgg] [--batch 128]
        [--steps 20] [--threads N] [--json out.json]

Times each layer's forward and backward pass, the loss and the optimizer
step, inside real training steps (dropout masks, ReLU masks and caches as
``fit`` makes them), and prints the median milliseconds of each part over
``--steps`` steps after two warm-up steps, with its share of the step. This
is the profile that says what to make faster next; it asserts nothing and its
milliseconds are this machine's (the machine record is printed with them).
The result goes to ``benchmarks/results/profile-<arch>-<CPU kind>.json``
unless ``--json`` says otherwise; ``scripts/speed_tables.py`` writes the
README's table from it.
"""
import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from cnn.model import _backward_steps  # noqa: E402


def build(arch):
    import cnn
    from cnn import architectures
    from cnn.chapter import build_model

    # each compiled as it is by the command line (LeNet-5 and small_vgg take sparse labels)
    return build_model() if arch == "chapter" else getattr(architectures, arch)(api=cnn)


def profile(model, x, y, steps):
    """Median milliseconds of each part of a training step, in step order."""
    times = defaultdict(list)

    def clock(label, call, *args, **kwargs):
        start = time.perf_counter()
        result = call(*args, **kwargs)
        times[label].append((time.perf_counter() - start) * 1e3)
        return result

    model.train_on_batch(x, y)  # builds the model, compiles the kernels
    model.train_on_batch(x, y)
    for label in list(times):
        times[label].clear()
    for _ in range(steps):
        start = time.perf_counter()
        out = x
        for layer in model.layers:
            out = clock(f"{layer.name} forward", layer.forward, out, training=True)
        loss = clock("loss", model._loss, out, y)
        if model._fused:
            last = model.layers[-1]
            grad = clock(f"{last.name} backward", last.backward_from_logits, model.loss.backward_from_logits())
            below = model.layers[-2::-1]
        else:
            grad = clock("loss backward", model.loss.backward)
            below = model.layers[::-1]
        for label, step in _backward_steps(below):  # as Sequential._backward runs them
            grad = clock(f"{label} backward", step, grad)
        clock("optimizer step", model.optimizer.step, model.layers)
        times["whole step"].append((time.perf_counter() - start) * 1e3)
        del loss
    return {label: statistics.median(values) for label, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["chapter", "lenet5", "small_vgg"], default="chapter")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="the engine's worker threads (default: every core)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where the result goes (default benchmarks/results/profile-<arch>-<CPU kind>.json)")
    args = parser.parse_args(argv)

    import machine as machine_record

    if args.threads:
        from kernels import parallel

        parallel.set_workers(args.threads)
    import cnn

    cnn.set_seed(1)
    record = machine_record.record(threads=args.threads)
    model = build(args.arch)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch)
    y = labels if "sparse" in type(model.loss).__name__.lower() else np.eye(10, dtype=np.float32)[labels]
    medians = profile(model, x, y, args.steps)
    whole = medians.pop("whole step")
    print(f"{args.arch}, batch {args.batch}: median of {args.steps} steps")
    print(f"{'part':32s} {'ms':>8s} {'share':>6s}")
    for label, ms in medians.items():
        print(f"{label:32s} {ms:8.2f} {ms / whole * 100:5.1f}%")
    print(f"{'whole step':32s} {whole:8.2f}  ({args.batch / whole * 1e3:.0f} images/s; the parts' medians "
          f"add to {sum(medians.values()):.2f})")
    record = machine_record.finish(record)
    print(machine_record.describe(record))
    import json

    kind = machine_record.kind(record["cpu"])
    target = args.json or ROOT / "benchmarks" / "results" / f"profile-{args.arch}-{kind}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "kind": kind, "arch": args.arch,
                                  "batch": args.batch, "steps": args.steps,
                                  "command": " ".join(["python", "benchmarks/profile_step.py", *sys.argv[1:]]),
                                  "record": record, "parts_ms": medians, "whole_step_ms": whole}, indent=1) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()

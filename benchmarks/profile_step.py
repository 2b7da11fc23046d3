"""Where a training step's time goes, layer by layer, for a named model.

    python benchmarks/profile_step.py [--arch chapter|lenet5|small_vgg|resnet] [--batch 128]
        [--steps 20] [--threads N] [--json out.json]

Times each layer's forward and backward pass, the loss and the optimizer
step, inside the model's own training steps (``train_on_batch``: its runner,
a graph's too, its fusion plan, the dropout masks, ReLU masks and caches as
``fit`` makes them; the layers' methods are wrapped, nothing is re-run
beside the model), and prints the median milliseconds of each part over
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


def build(arch):
    import cnn
    from cnn import architectures
    from cnn.chapter import build_model

    # each compiled as it is by the command line (LeNet-5, small_vgg and the ResNet take sparse labels)
    if arch == "chapter":
        return build_model()
    if arch == "resnet":
        model = architectures.resnet8(api=cnn)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    return getattr(architectures, arch)(api=cnn)


# the layer methods a training step calls, and how each is labelled; a call made inside
# another timed call (a Dense's backward runs its backward_from_logits) counts in the outer one
TIMED = (("forward", "{} forward"), ("backward", "{} backward"),
         ("backward_from_logits", "{} backward (from the logits)"),
         ("backward_through_maxpool", "{} backward (with the max-pool above)"))


def instrument(model, times):
    """Wrap each layer's pass methods, the loss's and the optimizer's step so that
    the model's own training step (``train_on_batch``, whatever kind of model)
    records where its time goes into ``times[label]`` (summed over a step)."""
    active = []

    def wrap(owner, attr, label):
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            if active:
                return original(*args, **kwargs)
            active.append(label)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[label] = times.get(label, 0.0) + (time.perf_counter() - start) * 1e3
                active.pop()

        setattr(owner, attr, timed)  # on the instance: the class's method stays as it is

    for layer in model.layers:
        for attr, label in TIMED:
            if hasattr(layer, attr):
                wrap(layer, attr, label.format(layer.name))
    for attr in ("forward", "forward_from_logits"):
        wrap(model.loss, attr, "loss")
    for attr in ("backward", "backward_from_logits"):
        wrap(model.loss, attr, "loss backward")
    wrap(model.optimizer, "step", "optimizer step")


def profile(model, x, y, steps):
    """Median milliseconds of each part of a training step, in the order the step first runs them."""
    model.train_on_batch(x, y)  # builds the model, compiles the kernels
    model.train_on_batch(x, y)
    current = {}
    instrument(model, current)
    parts = {}
    for _ in range(steps):
        current.clear()
        start = time.perf_counter()
        model.train_on_batch(x, y)  # the model's own step: its runner, its fusion plan
        whole = (time.perf_counter() - start) * 1e3
        for label, ms in current.items():
            parts.setdefault(label, []).append(ms)
        parts.setdefault("whole step", []).append(whole)
    return {label: statistics.median(values) for label, values in parts.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["chapter", "lenet5", "small_vgg", "resnet"], default="chapter")
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
    print(f"{'part':44s} {'ms':>8s} {'share':>6s}")
    for label, ms in medians.items():
        print(f"{label:44s} {ms:8.2f} {ms / whole * 100:5.1f}%")
    print(f"{'whole step':44s} {whole:8.2f}  ({args.batch / whole * 1e3:.0f} images/s; the parts' medians "
          f"add to {sum(medians.values()):.2f}, the rest is the runner, the metrics and the checks)")
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

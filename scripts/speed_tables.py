"""The README's speed and accuracy tables, written from the committed result files, never typed.

    python scripts/speed_tables.py            # rewrite the README's generated blocks
    python scripts/speed_tables.py --check    # exit 1 if the README differs from the files

Each generated block in README.md sits between two markers naming what fills
it and from which file under benchmarks/results/::

    <!-- generated: run benchmarks/results/run-avx512.json -->
    ...
    <!-- end generated -->

Kinds: ``run`` (benchmarks/run.py: the engine against Keras and PyTorch),
``conv`` (benchmarks/conv_layers.py: each convolution shape), ``layers`` (its
depthwise and transposed rows), ``profile``
(benchmarks/profile_step.py: a training step's parts), ``accuracy``
(benchmarks/accuracy_parity.py) and ``lenet5`` (benchmarks/lenet5_accuracy.py).
``tests/test_docs.py``
runs the check, so a README table that is not what its file says fails the suite.
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- generated: (\w+) ([\w./-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _machine():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import machine

    return machine


def _median(value):
    return value["median"] if isinstance(value, dict) else value


def _cell(value, spec):
    """A figure as the table shows it: the median, and (min-max) when it was repeated."""
    if value is None:
        return "missing"
    if isinstance(value, dict):
        if value.get("runs", 1) > 1:
            return f"{format(value['median'], spec)} ({format(value['min'], spec)}-{format(value['max'], spec)})"
        return format(value["median"], spec)
    return format(value, spec)


RUN_ROWS = [
    ("chapter training, images/s", lambda r: r.get("train_images_per_s"), ".0f", True),
    ("Fashion-MNIST epoch (60,000 images), s", lambda r: r.get("fashion_epoch_s"), ".1f", False),
    ("single-image predict, median ms", lambda r: r.get("latency", {}).get("median_ms"), ".3f", False),
    ("single-image predict, p99 ms", lambda r: r.get("latency", {}).get("p99_ms"), ".3f", False),
    ("batch inference, images/s", lambda r: r.get("inference_images_per_s"), ".0f", True),
    ("peak memory while training, MB", lambda r: r.get("train_peak_rss_mb"), ".0f", False),
    ("memory training takes above the imports, MB", lambda r: r.get("train_above_imports_mb"), ".0f", False),
    ("peak memory, whole run, MB", lambda r: r.get("peak_rss_mb"), ".0f", False),
    ("start to first trained batch, s", lambda r: r.get("first_batch_s"), ".2f", False),
]


def run_table(doc):
    """benchmarks/run.py's result as a table, its notes and the machine record."""
    results = doc["results"]
    names = list(results)
    engine = results.get("engine", {})
    ok = {n: "missing" not in r and "error" not in r for n, r in results.items()}
    peers = [n for n in names if n != "engine"]
    lines = ["| workload | " + " | ".join(names) + " | " + " | ".join(f"engine vs {n}" for n in peers) + " |",
             "| --- " * (1 + len(names) + len(peers)) + "|"]
    for label, get, spec, higher_better in RUN_ROWS:
        values = {n: get(results[n]) if ok[n] else None for n in names}
        ratios = []
        for n in peers:
            mine, theirs = _median(values.get("engine")), _median(values[n])
            ratios.append("-" if mine is None or theirs is None or not ok.get("engine")
                          else f"{(mine / theirs if higher_better else theirs / mine):.2f}x")
        lines.append(f"| {label} | " + " | ".join(_cell(values[n], spec) for n in names) + " | "
                     + " | ".join(ratios) + " |")
    lines += ["", "Medians, with (min-max) over the repeats where a figure was repeated; ratios above 1 mean the "
              "engine is better."]
    if doc.get("refused") or doc["record"].get("busy"):
        lines.append("MARKED: other programs kept this machine busy during the run; its ratios are noisy.")
    if engine.get("first_batch_cold_s") is not None:
        lines.append(f"Engine start-up to the first trained batch: {engine['first_batch_cold_s']:.2f} s with "
                     f"numba's cache cold, {engine['first_batch_s']:.2f} s warm.")
    if engine.get("train_gflops"):
        lines.append(f"Engine training: {engine['train_gflops']:.1f} GFLOP/s effective, "
                     f"{engine['train_gflops'] / engine['gemm_peak_gflops'] * 100:.0f}% of a 4096^3 float32 GEMM "
                     f"measured at {engine['gemm_peak_gflops']:.0f} GFLOP/s in the same run.")
    for n in names:
        if "missing" in results[n]:
            lines.append(f"{n}: not installed (pip install -e '.[bench]').")
        elif "error" in results[n]:
            lines.append(f"{n}: failed: {results[n]['error']}")
    lines += ["", f"`{doc['command']}`, {doc['date']}:", "", "```", _machine().describe(doc["record"]), "```"]
    return "\n".join(lines)


def _pair(r, bold=False):
    """A run's median forward / dW+dx ms (or what stands in its place)."""
    if not isinstance(r, dict):
        return "-" if r is None else str(r)
    text = f"{r['forward']['median']:.2f} / {r['dW+dx']['median']:.2f}"
    return f"**{text}**" if bold else text


def _versus(ours, runs):
    """The faster peer's time over ours, forward and forward + dW + dx, and whether we are behind in either."""
    peers = [r for k, r in runs.items() if k in ("torch", "tensorflow") and isinstance(r, dict)]
    if not ours or not peers:
        return "-", False
    fwd = min(p["forward"]["median"] for p in peers) / ours["forward"]["median"]
    both = min(p["forward"]["median"] + p["dW+dx"]["median"] for p in peers) / (
        ours["forward"]["median"] + ours["dW+dx"]["median"])
    return f"{fwd:.2f}x / {both:.2f}x", fwd < 1 or both < 1


def conv_table(doc):
    """benchmarks/conv_layers.py's result: each layer and batch, the engine's
    algorithms and the peers (medians, ms), the algorithm the layers pick in
    bold, and the picked one against the faster peer."""
    lines = ["| layer, batch | engine im2col fwd / dW+dx | engine Winograd fwd / dW+dx | PyTorch fwd / dW+dx "
             "| TensorFlow fwd / dW+dx | picked vs the faster peer, fwd / fwd+dW+dx |",
             "| --- | --- | --- | --- | --- | --- |"]

    behind = 0
    plain = [row for row in doc["rows"] if row.get("kind", "conv") == "conv"]
    for row in plain:
        if row.get("left_out"):
            continue
        runs = row["runs"]
        picked = next((r for k, r in runs.items() if k.startswith("engine") and isinstance(r, dict)
                       and r.get("picked")), None)
        versus, slower = _versus(picked, runs)
        behind += slower
        cells = [_pair(runs.get(name), bool(isinstance(runs.get(name), dict) and runs[name].get("picked")))
                 for name in ("engine im2col", "engine winograd", "torch", "tensorflow")]
        lines.append(f"| {row['layer']}, {row['batch']} | " + " | ".join(cells) + f" | {versus} |")
    rows = sum(not r.get("left_out") for r in plain)
    lines += ["", f"Medians in ms; ratios above 1 mean the engine's picked algorithm is faster than the faster "
              f"peer. {behind} of {rows} rows have the engine behind the faster peer in one of the two.",
              "", f"`{doc['command']}`, {doc['date']}:", "", "```", _machine().describe(doc["machine"]), "```"]
    return "\n".join(lines)


def layers_table(doc):
    """benchmarks/conv_layers.py's depthwise and transposed rows: the layer's
    kernels (one algorithm each, named) against PyTorch and TensorFlow."""
    rows = [row for row in doc["rows"] if row.get("kind", "conv") != "conv" and not row.get("left_out")]
    lines = ["| layer, batch | engine (algorithm) fwd / dW+dx | PyTorch fwd / dW+dx | TensorFlow fwd / dW+dx "
             "| engine vs the faster peer, fwd / fwd+dW+dx |", "| --- | --- | --- | --- | --- |"]
    behind = 0
    for row in rows:
        runs = row["runs"]
        name, ours = next((k, r) for k, r in runs.items() if k.startswith("engine") and isinstance(r, dict))
        cells = [_pair(runs.get("torch")), _pair(runs.get("tensorflow"))]
        versus, slower = _versus(ours, runs)
        behind += slower
        algorithm = name.removeprefix("engine ")
        lines.append(f"| {row['layer']}, {row['batch']} | {ours['forward']['median']:.2f} / "
                     f"{ours['dW+dx']['median']:.2f} ({algorithm}) | " + " | ".join(cells) + f" | {versus} |")
    lines += ["", f"Medians in ms; ratios above 1 mean the engine is faster than the faster peer. {behind} of "
              f"{len(rows)} rows have the engine behind the faster peer in one of the two.",
              "", f"`{doc['command']}`, {doc['date']}:", "", "```", _machine().describe(doc["machine"]), "```"]
    return "\n".join(lines)


def profile_table(doc):
    """benchmarks/profile_step.py's result: each part of a training step."""
    whole = doc["whole_step_ms"]
    lines = ["| part | ms | share |", "| --- | --- | --- |"]
    for label, ms in doc["parts_ms"].items():
        lines.append(f"| {label} | {ms:.2f} | {ms / whole * 100:.1f}% |")
    lines.append(f"| whole step | {whole:.2f} | ({doc['batch'] / whole * 1e3:.0f} images/s) |")
    lines += ["", f"{doc['arch']}, batch {doc['batch']}, medians of {doc['steps']} steps; "
              f"`{doc['command']}`, {doc['date']}:", "", "```", _machine().describe(doc["record"]), "```"]
    return "\n".join(lines)


def _mean_sd(values):
    import statistics

    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def accuracy_table(doc):
    """benchmarks/accuracy_parity.py's result: the chapter's protocol over seeds in both."""
    lines = ["| | 100 test images: mean ± sd | 10,000 test images: mean ± sd | seconds per run |",
             "| --- | --- | --- | --- |"]
    for name, label in (("engine", "this engine"), ("keras", "Keras 3 (TensorFlow CPU)")):
        runs = doc["runs"][name]
        small, full = _mean_sd([100 * r["acc100"] for r in runs]), _mean_sd([100 * r["acc10000"] for r in runs])
        seconds = sum(r["seconds"] for r in runs) / len(runs)
        lines.append(f"| {label} | {small[0]:.2f}% ± {small[1]:.2f} | {full[0]:.2f}% ± {full[1]:.2f} | {seconds:.0f} |")
    seeds = [r["seed"] for r in doc["runs"]["engine"]]
    lines += ["", f"Seeds {seeds[0]}-{seeds[-1]}; per-seed figures in the file."]
    return "\n".join(lines)


def lenet5_table(doc):
    """benchmarks/lenet5_accuracy.py's result: LeNet-5 on Fashion-MNIST over seeds in both."""
    lines = ["| framework | test accuracy, mean | sd | per seed | seconds |", "| --- | --- | --- | --- | --- |"]
    for name, label in (("engine", "engine"), ("keras", "Keras 3 (TensorFlow CPU)")):
        values = [100 * v for v in doc["results"][name]]
        mean, sd = _mean_sd(values)
        lines.append(f"| {label} | {mean:.2f}% | {sd:.2f} | {' / '.join(f'{v:.2f}' for v in values)} "
                     f"| {doc['seconds'][name]:.0f} |")
    when = f", {doc['date']}" if doc.get("date") else ""
    images = f"{doc['train_images']:,} training images, " if doc.get("train_images") else ""
    lines += ["", f"{images}{doc['epochs']} epochs; {doc.get('cpu', 'the CPU was not recorded')}{when}."]
    return "\n".join(lines)


MAKERS = {"run": run_table, "conv": conv_table, "layers": layers_table, "profile": profile_table, "accuracy": accuracy_table,
          "lenet5": lenet5_table}


def render(text):
    """``text`` with every generated block rewritten from its file."""
    def fill(match):
        head, kind, path, _, tail = match.groups()
        if kind not in MAKERS:
            raise SystemExit(f"README: unknown generated block kind {kind!r}")
        doc = json.loads((ROOT / path).read_text())
        return head + MAKERS[kind](doc) + "\n" + tail

    return BLOCK.sub(fill, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the README is up to date")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md's speed tables differ from benchmarks/results/: run python scripts/speed_tables.py")
            return 1
        print(f"README.md: {len(BLOCK.findall(text))} generated blocks up to date")
        return 0
    README.write_text(new)
    print(f"README.md: {len(BLOCK.findall(new))} generated blocks written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The convolution shapes people compare on, layer by layer: each of the
engine's algorithms against PyTorch's conv2d (oneDNN) and TensorFlow's.

    python benchmarks/conv_layers.py [--batches 1 32 128] [--repeats 5] [--max-gflop 25]
        [--threads N] [--only NAME ...] [--json out.json] [--plot out.png]

For each layer and batch size: forward, and the backward pass (the weight
gradient dW and the input gradient dx; the engine computes them in one call,
timed as dW alone and as dW + dx), as min / median / max milliseconds over
``--repeats`` runs after a warm-up, GFLOP/s of the plain convolution's
multiply-adds (so Winograd, which does fewer, can pass 100% of a GEMM's
peak), and the largest error of the float32 result against a float64
reference (the engine's NumPy path in float64), relative to the largest
value. A configuration above ``--max-gflop`` for one pass is left out (the
2-core machines would take minutes per row). PyTorch is given NCHW
tensors, its default and what its users write, made outside the timed loop,
the same way as in run.py (TORCH_LAYOUT; channels-last won some forward
passes and lost most backward ones on the AVX-512 EPYC, so neither is "the
fastest way" throughout); TensorFlow runs NHWC natively. A peer that is not
installed is reported missing. Every run prints the machine record
(benchmarks/machine.py). The result goes to
``benchmarks/results/conv_layers-<CPU kind>.json`` unless ``--json`` says
otherwise; ``scripts/speed_tables.py`` writes the README's table from it.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

# name, (height, width, cin), (kh, kw, cout), stride, dilation, padding
LAYERS = [
    ("chapter conv1 28x28 1->32", (28, 28, 1), (3, 3, 32), 1, 1, "same"),
    ("chapter conv2 28x28 32->64", (28, 28, 32), (3, 3, 64), 1, 1, "same"),
    ("LeNet 5x5 28x28 1->6", (28, 28, 1), (5, 5, 6), 1, 1, "same"),
    ("LeNet 5x5 14x14 6->16", (14, 14, 6), (5, 5, 16), 1, 1, "valid"),
    ("stride 2 28x28 32->64", (28, 28, 32), (3, 3, 64), 2, 1, "same"),
    ("dilated 2 28x28 32->32", (28, 28, 32), (3, 3, 32), 1, 2, "same"),
    ("ResNet stem 7x7/2 224 3->64", (224, 224, 3), (7, 7, 64), 2, 1, "same"),
    ("ResNet 3x3 56x56 64->64", (56, 56, 64), (3, 3, 64), 1, 1, "same"),
    ("ResNet 1x1 56x56 256->64", (56, 56, 256), (1, 1, 64), 1, 1, "same"),
    ("VGG 3x3 56x56 256->256", (56, 56, 256), (3, 3, 256), 1, 1, "same"),
    ("VGG 3x3 28x28 512->512", (28, 28, 512), (3, 3, 512), 1, 1, "same"),
    ("VGG 3x3 14x14 512->512", (14, 14, 512), (3, 3, 512), 1, 1, "same"),
    ("VGG 3x3 7x7 512->512", (7, 7, 512), (3, 3, 512), 1, 1, "same"),
    # (kh, kw, depth multiplier) for a depthwise layer; (kh, kw, filters) of a transposed one
    ("MobileNet depthwise 3x3 112x112 32", (112, 112, 32), (3, 3, 1), 1, 1, "same", "depthwise"),
    ("MobileNet depthwise 3x3 56x56 128", (56, 56, 128), (3, 3, 1), 1, 1, "same", "depthwise"),
    ("MobileNet depthwise 3x3 28x28 256", (28, 28, 256), (3, 3, 1), 1, 1, "same", "depthwise"),
    ("MobileNet depthwise 3x3 14x14 512", (14, 14, 512), (3, 3, 1), 1, 1, "same", "depthwise"),
    ("MobileNet depthwise 3x3/2 56x56 128", (56, 56, 128), (3, 3, 1), 2, 1, "same", "depthwise"),
    ("U-Net transposed 2x2/2 28x28 128->64", (28, 28, 128), (2, 2, 64), 2, 1, "valid", "transpose"),
    ("U-Net transposed 2x2/2 56x56 64->32", (56, 56, 64), (2, 2, 32), 2, 1, "valid", "transpose"),
]
KINDS = ("conv", "depthwise", "transpose")  # a row without a seventh entry is a plain convolution


def output_size(size, k, s, d, padding):
    from kernels.geometry import window_geometry

    return window_geometry(size, (k - 1) * d + 1, s, padding)[0]


def gflop(n, shape, kernel, stride, dilation, padding, kind="conv"):
    """The multiply-adds of one pass, times 2: a depthwise layer's output cell sums kh * kw products (its
    third kernel entry is the depth multiplier), a transposed layer scatters each input value through
    kh * kw * filters of them."""
    h, w, cin = shape
    kh, kw, cout = kernel
    if kind == "transpose":
        return 2 * n * h * w * kh * kw * cin * cout / 1e9
    oh, ow = output_size(h, kh, stride, dilation, padding), output_size(w, kw, stride, dilation, padding)
    return 2 * n * oh * ow * kh * kw * cin * cout / 1e9


def timed(call, repeats):
    call()  # warm-up: compiles, allocates, fills caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return {"min": min(times), "median": statistics.median(times), "max": max(times)}


# ---------------------------------------------------------------- the engine
def engine_runs(x, w, stride, dilation, padding, repeats):
    from kernels.conv import conv2d_backward, conv2d_forward, winograd_applies

    algorithms = ["im2col"] + (["winograd"] if winograd_applies(w.shape, (stride, stride), (dilation, dilation)) else [])
    ref, ref_cache = conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, (stride, stride), padding,
                                    impl="numpy", dilation=(dilation, dilation))
    dout = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
    ref_dx, ref_dw, _ = conv2d_backward(dout.astype(np.float64), ref_cache)
    picked = conv2d_forward(x, w, None, (stride, stride), padding, impl="numba",
                            dilation=(dilation, dilation))[1].algorithm  # what the layers run on this call
    results = {}
    for algorithm in algorithms:
        def forward():
            return conv2d_forward(x, w, None, (stride, stride), padding, impl=algorithm, dilation=(dilation, dilation))

        out, cache = forward()
        dx, dw, _ = conv2d_backward(dout, cache)
        error = max(_rel(out, ref), _rel(dx, ref_dx), _rel(dw, ref_dw))
        results[f"engine {algorithm}"] = {
            "forward": timed(forward, repeats),
            "dW": timed(lambda: conv2d_backward(dout, cache, need_dx=False), repeats),
            "dW+dx": timed(lambda: conv2d_backward(dout, cache, need_dx=True), repeats),
            "error": error,
            "picked": algorithm == picked,
        }
    return results, (ref, ref_dx, ref_dw, dout)


def _rel(got, ref):
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def engine_layer_runs(kind, x, w, stride, padding, repeats):
    """A depthwise or transposed row: the layer's kernels (numba) against their NumPy path in float64."""
    if kind == "depthwise":
        from kernels.depthwise import depthwise_backward as backward
        from kernels.depthwise import depthwise_forward

        def forward(impl="numba", a=x, b=w):
            return depthwise_forward(a, b, None, (stride, stride), padding, impl=impl)
        algorithm = "engine depthwise loops"
    else:
        from kernels.transpose import conv2d_transpose_backward as backward
        from kernels.transpose import conv2d_transpose_forward

        def forward(impl="numba", a=x, b=w):
            return conv2d_transpose_forward(a, b, None, (stride, stride), padding, impl=impl)
        algorithm = "engine col2im(x W^T)"
    ref, ref_cache = forward("numpy", x.astype(np.float64), w.astype(np.float64))
    dout = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
    ref_dx, ref_dw, _ = backward(dout.astype(np.float64), ref_cache)
    out, cache = forward()
    dx, dw, _ = backward(dout, cache)
    return {algorithm: {"forward": timed(forward, repeats),
                        "dW": timed(lambda: backward(dout, cache, need_dx=False), repeats),
                        "dW+dx": timed(lambda: backward(dout, cache, need_dx=True), repeats),
                        "error": max(_rel(out, ref), _rel(dx, ref_dx), _rel(dw, ref_dw)), "picked": True}}, \
        (ref, ref_dx, ref_dw, dout)


def torch_layer_runs(kind, x, w, stride, padding, repeats, reference, threads):
    """PyTorch's depthwise convolution (conv2d with groups = channels) or conv_transpose2d, timed by autograd."""
    try:
        import torch
    except ImportError:
        return {"torch": "missing"}
    torch.set_num_threads(threads)
    ref, _, _, dout = reference
    layout = torch.channels_last if TORCH_LAYOUT == "channels_last" else torch.contiguous_format
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=layout)
    gt = torch.from_numpy(dout).permute(0, 3, 1, 2).contiguous(memory_format=layout)
    kh, kw, a, b = w.shape
    if kind == "depthwise":  # (kh, kw, c, dm) -> (c * dm, 1, kh, kw): output channel c * dm + m
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(a * b, 1, kh, kw)))
        if padding == "same" and stride > 1:
            from kernels.geometry import window_geometry

            _, top, bottom = window_geometry(x.shape[1], kh, stride, "same")
            _, left, right = window_geometry(x.shape[2], kw, stride, "same")
            xt = torch.nn.functional.pad(xt, (left, right, top, bottom)).contiguous(memory_format=layout)
            pad = 0
        else:
            pad = "same" if padding == "same" else 0

        def run(inp, weight):
            return torch.nn.functional.conv2d(inp, weight, stride=stride, padding=pad, groups=a)
    else:  # (kh, kw, filters, cin) -> (cin, filters, kh, kw)
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))

        def run(inp, weight):
            return torch.nn.functional.conv_transpose2d(inp, weight, stride=stride)

    def forward():
        with torch.no_grad():
            return run(xt, wt)

    def grads(need_dx):
        inp = xt.detach().requires_grad_(need_dx)
        weight = wt.detach().requires_grad_(True)
        run(inp, weight).backward(gt)

    out = forward().permute(0, 2, 3, 1).numpy()
    return {"torch": {"forward": timed(forward, repeats), "dW": timed(lambda: grads(False), repeats),
                      "dW+dx": timed(lambda: grads(True), repeats),
                      "error": _rel(out, ref) if out.shape == ref.shape else float("nan")}}


def tf_layer_runs(kind, x, w, stride, padding, repeats, reference, threads):
    """TensorFlow's depthwise_conv2d or conv2d_transpose, as tf.functions."""
    try:
        import tensorflow as tf
    except ImportError:
        return {"tensorflow": "missing"}
    ref, _, _, dout = reference
    xt, wt, gt = tf.constant(x), tf.constant(w), tf.constant(dout)

    if kind == "depthwise":
        def run(inp, weight):
            return tf.nn.depthwise_conv2d(inp, weight, strides=[1, stride, stride, 1], padding=padding.upper())
    else:
        shape = [x.shape[0], *ref.shape[1:3], w.shape[2]]

        def run(inp, weight):
            return tf.nn.conv2d_transpose(inp, weight, shape, strides=stride, padding=padding.upper())

    @tf.function
    def forward():
        return run(xt, wt)

    @tf.function
    def grads():
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            out = run(xt, wt)
        return tape.gradient(out, [xt, wt], output_gradients=gt)

    @tf.function
    def grad_w():
        with tf.GradientTape() as tape:
            tape.watch(wt)
            out = run(xt, wt)
        return tape.gradient(out, wt, output_gradients=gt)

    out = forward().numpy()
    return {"tensorflow": {"forward": timed(lambda: forward().numpy(), repeats),
                           "dW": timed(lambda: grad_w().numpy(), repeats),
                           "dW+dx": timed(lambda: [g.numpy() for g in grads()], repeats),
                           "error": _rel(out, ref)}}


# ---------------------------------------------------------------- peers
# How PyTorch's tensors are laid out in both harnesses (this one and run.py), made before any
# timing: 'nchw' (PyTorch's default, what its users write) or 'channels_last'. CNN_TORCH_LAYOUT
# overrides it for a comparison run.
TORCH_LAYOUT = os.environ.get("CNN_TORCH_LAYOUT", "nchw")


def torch_runs(x, w, stride, dilation, padding, repeats, reference, threads):
    try:
        import torch
    except ImportError:
        return {"torch": "missing"}
    torch.set_num_threads(threads)
    ref, ref_dx, ref_dw, dout = reference
    layout = torch.channels_last if TORCH_LAYOUT == "channels_last" else torch.contiguous_format
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=layout)
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
    h, kh = x.shape[1], w.shape[0]
    if padding == "same" and stride > 1:  # Keras's asymmetric 'same': pad explicitly, outside the timing
        from kernels.geometry import window_geometry

        _, top, bottom = window_geometry(x.shape[1], (kh - 1) * dilation + 1, stride, "same")
        _, left, right = window_geometry(x.shape[2], (w.shape[1] - 1) * dilation + 1, stride, "same")
        xt = torch.nn.functional.pad(xt, (left, right, top, bottom)).contiguous(memory_format=layout)
        pad = 0
    else:
        pad = "same" if padding == "same" else 0
    gt = torch.from_numpy(dout).permute(0, 3, 1, 2).contiguous(memory_format=layout)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, stride=stride, padding=pad, dilation=dilation)

    def grad_w():
        return torch.nn.grad.conv2d_weight(xt, wt.shape, gt, stride=stride, padding=pad if pad != "same" else (
            (kh - 1) * dilation // 2), dilation=dilation)

    def grad_x():
        return torch.nn.grad.conv2d_input(xt.shape, wt, gt, stride=stride, padding=pad if pad != "same" else (
            (kh - 1) * dilation // 2), dilation=dilation)

    out = forward().permute(0, 2, 3, 1).numpy()
    result = {"forward": timed(forward, repeats), "dW": timed(grad_w, repeats)}
    dx_time = timed(grad_x, repeats)
    result["dW+dx"] = {k: result["dW"][k] + dx_time[k] for k in dx_time}
    result["error"] = _rel(out, ref) if out.shape == ref.shape else float("nan")
    return {"torch": result}


def tf_runs(x, w, stride, dilation, padding, repeats, reference, threads):
    try:
        import tensorflow as tf
    except ImportError:
        return {"tensorflow": "missing"}
    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:  # only before TensorFlow's first operation; the first call comes here first
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass
    ref, ref_dx, ref_dw, dout = reference
    xt, wt, gt = tf.constant(x), tf.constant(w), tf.constant(dout)
    pad = padding.upper()

    @tf.function
    def forward():
        return tf.nn.conv2d(xt, wt, strides=stride, padding=pad, dilations=dilation)

    @tf.function
    def grads():
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            out = tf.nn.conv2d(xt, wt, strides=stride, padding=pad, dilations=dilation)
        return tape.gradient(out, [xt, wt], output_gradients=gt)

    @tf.function
    def grad_w():
        with tf.GradientTape() as tape:
            tape.watch(wt)
            out = tf.nn.conv2d(xt, wt, strides=stride, padding=pad, dilations=dilation)
        return tape.gradient(out, wt, output_gradients=gt)

    out = forward().numpy()
    return {"tensorflow": {"forward": timed(lambda: forward().numpy(), repeats),
                           "dW": timed(lambda: grad_w().numpy(), repeats),
                           "dW+dx": timed(lambda: [g.numpy() for g in grads()], repeats),
                           "error": _rel(out, ref)}}


# ---------------------------------------------------------------- the run
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-gflop", type=float, default=25.0, help="leave out a pass above this many GFLOP")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of the engine and of the peers alike (default: every core)")
    parser.add_argument("--only", nargs="*", default=None, help="layers whose name contains one of these words")
    parser.add_argument("--peers", nargs="*", default=["torch", "tensorflow"])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    import machine

    from kernels import parallel

    if args.threads:
        parallel.set_workers(args.threads)
    rec = machine.record(peers=[p if p != "tensorflow" else "tensorflow" for p in args.peers],
                         threads=parallel.WORKERS)
    rows = []
    for name, shape, kernel, stride, dilation, padding, *kind in LAYERS:
        kind = kind[0] if kind else "conv"
        if args.only and not any(word.lower() in name.lower() for word in args.only):
            continue
        for n in args.batches:
            flop = gflop(n, shape, kernel, stride, dilation, padding, kind)
            if flop > args.max_gflop:
                rows.append({"layer": name, "batch": n, "gflop": flop, "left_out": True})
                continue
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, *shape)).astype(np.float32)
            w_shape = (kernel[0], kernel[1], kernel[2], shape[2]) if kind == "transpose" else (
                kernel[0], kernel[1], shape[2], kernel[2])
            w = (rng.standard_normal(w_shape) / np.sqrt(kernel[0] * kernel[1] * shape[2])).astype(np.float32)
            if kind != "conv":
                runs, reference = engine_layer_runs(kind, x, w, stride, padding, args.repeats)
                if "torch" in args.peers:
                    runs.update(torch_layer_runs(kind, x, w, stride, padding, args.repeats, reference,
                                                 parallel.WORKERS))
                if "tensorflow" in args.peers:
                    runs.update(tf_layer_runs(kind, x, w, stride, padding, args.repeats, reference,
                                              parallel.WORKERS))
                rows.append({"layer": name, "kind": kind, "batch": n, "gflop": flop, "runs": runs})
                print(f"{name}, batch {n}: " + ", ".join(
                    f"{k} {v['forward']['median']:.2f}/{v['dW+dx']['median']:.2f} ms" for k, v in runs.items()
                    if isinstance(v, dict)), flush=True)
                continue
            runs, reference = engine_runs(x, w, stride, dilation, padding, args.repeats)
            if "torch" in args.peers:
                runs.update(torch_runs(x, w, stride, dilation, padding, args.repeats, reference, parallel.WORKERS))
            if "tensorflow" in args.peers:
                runs.update(tf_runs(x, w, stride, dilation, padding, args.repeats, reference, parallel.WORKERS))
            rows.append({"layer": name, "batch": n, "gflop": flop, "runs": runs})
            print(f"{name}, batch {n}: " + ", ".join(
                f"{k} {v['forward']['median']:.2f}/{v['dW+dx']['median']:.2f} ms" for k, v in runs.items()
                if isinstance(v, dict)), flush=True)
    machine.finish(rec)
    print()
    print(machine.describe(rec))
    print()
    print("The engine's algorithm that impl='numba' (what the layers run) picks for each call is marked (picked).")
    print()
    print("| layer | batch | GFLOP | algorithm | forward ms (min / median / max) | forward GFLOP/s | dW ms | dW+dx ms "
          "| backward GFLOP/s | max error vs float64 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if row.get("left_out"):
            print(f"| {row['layer']} | {row['batch']} | {row['gflop']:.1f} | (left out: above --max-gflop) "
                  "| | | | | | |")
            continue
        for algorithm, r in row["runs"].items():
            if not isinstance(r, dict):
                print(f"| {row['layer']} | {row['batch']} | {row['gflop']:.2f} | {algorithm} | {r} | | | | | |")
                continue
            f, b = r["forward"], r["dW+dx"]
            algorithm = f"**{algorithm}** (picked)" if r.get("picked") else algorithm
            print(f"| {row['layer']} | {row['batch']} | {row['gflop']:.2f} | {algorithm} | {f['min']:.2f} / "
                  f"{f['median']:.2f} / {f['max']:.2f} | {row['gflop'] / f['median'] * 1e3:.1f} | "
                  f"{r['dW']['median']:.2f} | {b['median']:.2f} | {2 * row['gflop'] / b['median'] * 1e3:.1f} | "
                  f"{r['error']:.1e} |")
    target = args.json or ROOT / "benchmarks" / "results" / f"conv_layers-{machine.kind(rec['cpu'])}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "kind": machine.kind(rec["cpu"]),
                                  "command": " ".join(["python", "benchmarks/conv_layers.py", *(argv or sys.argv[1:])]),
                                  "machine": rec, "rows": rows}, indent=1) + "\n")
    print(f"written to {target}")
    if args.plot:
        plot(rows, args.plot, rec)
    return 0


def plot(rows, path, rec):
    """GFLOP/s (forward + backward) per layer and algorithm, at the largest batch measured for each layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = {}
    for row in rows:
        if not row.get("left_out"):
            best[row["layer"]] = row  # the last, largest batch kept
    algorithms = sorted({a for row in best.values() for a, r in row["runs"].items() if isinstance(r, dict)})
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / max(len(algorithms), 1)
    for k, algorithm in enumerate(algorithms):
        values = []
        for row in best.values():
            r = row["runs"].get(algorithm)
            values.append(3 * row["gflop"] / (r["forward"]["median"] + r["dW+dx"]["median"]) * 1e3
                          if isinstance(r, dict) else 0)
        ax.bar(np.arange(len(best)) + k * width, values, width, label=algorithm)
    ax.set_xticks(np.arange(len(best)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{name}\n(batch {row['batch']})" for name, row in best.items()], rotation=30, ha="right",
                       fontsize=7)
    ax.set_ylabel("GFLOP/s (plain convolution's FLOPs, forward + backward)")
    simd = "AMX" if "amx_tile" in rec["cpu"]["flags"] else "AVX-512" if "avx512f" in rec["cpu"]["flags"] else (
        "AVX2" if "avx2" in rec["cpu"]["flags"] else "no AVX2")
    ax.set_title(f"Convolution layers on {rec['cpu']['model']} ({simd}, {rec['cores']} cores, "
                 f"{rec['engine_threads']} threads)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

"""Each numba kernel against its NumPy twin, on the chapter's shapes, in one run.

    python benchmarks/bench_kernels.py [--repeat 5]

Prints the median time of each and the ratio (twin / numba): a ratio, not a
time, is what carries from one noisy shared machine to another. Then the two
compiled convolution algorithms, im2col and Winograd F(4x4, 3x3), forward and
backward, on the chapter's layers and a wider one.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels.conv import conv2d_backward, conv2d_forward  # noqa: E402
from kernels.geometry import window_geometry  # noqa: E402
from kernels.im2col import col2im_numba, col2im_numpy, im2col_numba, im2col_numpy  # noqa: E402
from kernels.pool import maxpool_backward, maxpool_forward  # noqa: E402


def median_time(fn, repeat):
    fn()  # compile / warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    # the chapter's second convolution: 28x28x32 -> 64, 3x3, 'same'
    x = rng.standard_normal((args.batch, 28, 28, 32)).astype(np.float32)
    oh, pt, _ = window_geometry(28, 3, 1, "same")
    geometry = (3, 3, 1, 1, pt, pt, oh, oh)
    cols = im2col_numba(x, *geometry)
    pooled_in = rng.standard_normal((args.batch, 28, 28, 64)).astype(np.float32)
    out, cache_numba = maxpool_forward(pooled_in, impl="numba")
    _, cache_numpy = maxpool_forward(pooled_in, impl="numpy")
    dout = rng.standard_normal(out.shape).astype(np.float32)
    cases = [
        ("im2col 128x28x28x32, 3x3 same", lambda: im2col_numba(x, *geometry), lambda: im2col_numpy(x, *geometry)),
        ("col2im (its adjoint)", lambda: col2im_numba(cols, x.shape, *geometry), lambda: col2im_numpy(cols, x.shape, *geometry)),
        ("max-pool forward 2x2", lambda: maxpool_forward(pooled_in, impl="numba"), lambda: maxpool_forward(pooled_in, impl="numpy")),
        ("max-pool backward 2x2", lambda: maxpool_backward(dout, cache_numba), lambda: maxpool_backward(dout, cache_numpy)),
    ]
    print(f"{'kernel':40s} {'numba ms':>9s} {'numpy ms':>9s} {'numpy/numba':>12s}")
    for name, fast, twin in cases:
        t_fast, t_twin = median_time(fast, args.repeat), median_time(twin, args.repeat)
        print(f"{name:40s} {t_fast * 1e3:9.1f} {t_twin * 1e3:9.1f} {t_twin / t_fast:11.2f}x")

    print()
    print(f"{'convolution (3x3 same, relu)':40s} {'im2col ms':>9s} {'winograd':>9s} {'im2col/wino':>12s}")
    layers = [("chapter conv1 28x28x1 -> 32", 1, 32), ("chapter conv2 28x28x32 -> 64", 32, 64),
              ("wider 28x28x64 -> 64", 64, 64)]
    for name, cin, cout in layers:
        xin = rng.standard_normal((args.batch, 28, 28, cin)).astype(np.float32)
        w = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
        b = np.zeros(cout, np.float32)
        for step in ("forward", "backward"):
            times = []
            for impl in ("im2col", "winograd"):
                z, cache = conv2d_forward(xin, w, b, (1, 1), "same", impl=impl, relu=True)
                if step == "forward":
                    def run(impl=impl):
                        conv2d_forward(xin, w, b, (1, 1), "same", impl=impl, relu=True)
                else:
                    def run(cache=cache, z=z):
                        conv2d_backward(z, cache, need_dx=cin > 1)  # a first layer skips dx
                times.append(median_time(run, args.repeat))
            label = f"{name}, {step}"
            print(f"{label:40s} {times[0] * 1e3:9.1f} {times[1] * 1e3:9.1f} {times[0] / times[1]:11.2f}x")


if __name__ == "__main__":
    main()

"""The numba kernels equal their NumPy twins; col2im is the adjoint of im2col."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.conv import conv2d_backward, conv2d_forward
from kernels.geometry import window_geometry
from kernels.im2col import col2im_numba, col2im_numpy, im2col_numba, im2col_numpy
from kernels.pool import maxpool_backward, maxpool_forward


@st.composite
def window_cases(draw):
    n, h, w, c = draw(st.integers(1, 3)), draw(st.integers(1, 10)), draw(st.integers(1, 10)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    if padding == "valid" and (h < kh or w < kw):
        padding = "same"
    oh, pt, _ = window_geometry(h, kh, sh, padding)
    ow, pl, _ = window_geometry(w, kw, sw, padding)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, h, w, c), (kh, kw, sh, sw, pt, pl, oh, ow), dtype


@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_im2col_twins_agree_and_are_adjoint(case, seed):
    shape, geometry, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    cols = im2col_numba(x, *geometry)
    np.testing.assert_array_equal(cols, im2col_numpy(x, *geometry))  # pure copies: exact
    assert cols.dtype == dtype

    c = rng.standard_normal(cols.shape).astype(dtype)
    back = col2im_numba(c, shape, *geometry)
    np.testing.assert_allclose(back, col2im_numpy(c, shape, *geometry), rtol=1e-5, atol=1e-5)
    assert back.shape == shape and back.dtype == dtype
    # <im2col(x), c> == <x, col2im(c)>
    lhs = float(np.sum(cols.astype(np.float64) * c))
    rhs = float(np.sum(x.astype(np.float64) * back))
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_maxpool_twins_agree(case, seed):
    shape, (ph, pw, sh, sw, *_), dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[..., 0] = np.round(x[..., 0])  # channel 0 has ties: both must pick the first maximum
    padding = "valid" if shape[1] >= ph and shape[2] >= pw else "same"
    out_a, cache_a = maxpool_forward(x, (ph, pw), (sh, sw), padding, impl="numba")
    out_b, cache_b = maxpool_forward(x, (ph, pw), (sh, sw), padding, impl="numpy")
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(cache_a[1], cache_b[1])
    dout = rng.standard_normal(out_a.shape).astype(dtype)
    np.testing.assert_allclose(maxpool_backward(dout, cache_a), maxpool_backward(dout, cache_b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool", [(2, 2), (3, 2), (1, 3)])
@pytest.mark.parametrize("size", [(8, 8), (7, 9), (5, 4)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_maxpool_backward_for_windows_that_tile_the_image(rng, pool, size, padding):
    # stride = pool size takes the one-write path; odd sizes leave cells no
    # 'valid' window covers, whose gradient must be 0 (written, not left over)
    x = rng.standard_normal((3, *size, 5))
    out, cache = maxpool_forward(x, pool, None, padding, impl="numba")
    _, ref_cache = maxpool_forward(x, pool, None, padding, impl="numpy")
    dout = rng.standard_normal(out.shape)
    want = maxpool_backward(dout, ref_cache)
    for _ in range(2):  # twice: a fresh np.empty may hand back the first result's memory
        np.testing.assert_array_equal(maxpool_backward(dout, cache), want)


@settings(max_examples=20)
@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_conv_numba_and_numpy_paths_agree(case, seed):
    shape, (kh, kw, sh, sw, *_), dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((kh, kw, shape[3], 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    padding = "valid" if shape[1] >= kh and shape[2] >= kw else "same"
    out_a, cache_a = conv2d_forward(x, w, b, (sh, sw), padding, impl="numba")
    out_b, cache_b = conv2d_forward(x, w, b, (sh, sw), padding, impl="numpy")
    np.testing.assert_allclose(out_a, out_b, rtol=1e-6, atol=1e-6)
    dout = rng.standard_normal(out_a.shape).astype(dtype)
    for ga, gb in zip(conv2d_backward(dout, cache_a), conv2d_backward(dout, cache_b)):
        np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-5)


def test_conv_matches_direct_definition(rng):
    # the definition, written as loops: out[n,i,j,o] = sum x[n,i+a,j+b,c] w[a,b,c,o]
    x = rng.standard_normal((2, 5, 6, 3))
    w = rng.standard_normal((3, 2, 3, 4))
    out, _ = conv2d_forward(x, w, None, (1, 1), "valid")
    direct = np.zeros((2, 3, 5, 4))
    for i in range(3):
        for j in range(5):
            direct[:, i, j] = np.einsum("nabc,abco->no", x[:, i:i + 3, j:j + 2], w)
    np.testing.assert_allclose(out, direct, rtol=1e-12)


def test_chapter_figure_5_3_geometry():
    # a 5x5 image padded by one all round, 3x3 filter, stride 1 -> 5x5
    assert window_geometry(5, 3, 1, "same") == (5, 1, 1)
    assert window_geometry(5, 3, 1, "valid") == (3, 0, 0)
    assert window_geometry(28, 2, 2, "valid") == (14, 0, 0)


@pytest.mark.parametrize("size,k,s,expected", [
    (4, 3, 2, (2, 0, 1)),   # odd total padding: the extra one at the end
    (5, 2, 2, (3, 0, 1)),
    (6, 1, 3, (2, 0, 0)),
    (7, 4, 1, (7, 1, 2)),
    (1, 3, 3, (1, 1, 1)),
])
def test_same_padding_rule(size, k, s, expected):
    out, before, after = window_geometry(size, k, s, "same")
    assert (out, before, after) == expected
    assert out == -(-size // s)


def test_geometry_errors():
    with pytest.raises(ValueError, match="smaller than the window"):
        window_geometry(2, 3, 1, "valid")
    with pytest.raises(ValueError, match="padding"):
        window_geometry(5, 3, 1, "causal")


@given(seed=st.integers(0, 2**16), size=st.integers(1, 50), steps=st.integers(1, 5),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_adadelta_twins_agree(seed, size, steps, dtype):
    from kernels.optim import adadelta_update_numba, adadelta_update_numpy

    rng = np.random.default_rng(seed)
    states = [[rng.standard_normal(size).astype(dtype), np.zeros(size, dtype), np.zeros(size, dtype)] for _ in range(2)]
    states[1] = [a.copy() for a in states[0]]
    for _ in range(steps):
        grad = rng.standard_normal(size).astype(dtype)
        adadelta_update_numba(*states[0][:1], grad, *states[0][1:], 1.0, 0.95, 1e-7)
        adadelta_update_numpy(*states[1][:1], grad, *states[1][1:], 1.0, 0.95, 1e-7)
    for fast, twin in zip(*states):
        assert fast.dtype == dtype
        np.testing.assert_allclose(fast, twin, rtol=1e-5, atol=1e-7)


@given(seed=st.integers(0, 2**16), shape=st.sampled_from([(3,), (2, 5), (2, 3, 4, 5)]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_backward_twins_agree(seed, shape, dtype):
    from kernels.activations import relu_backward, relu_backward_numpy

    rng = np.random.default_rng(seed)
    out = np.maximum(rng.standard_normal(shape), 0).astype(dtype)  # exact zeros included
    dout = rng.standard_normal(shape).astype(dtype)
    fast = relu_backward(dout, out)
    assert fast.dtype == dtype
    np.testing.assert_array_equal(fast, relu_backward_numpy(dout, out))
    from kernels.activations import relu_backward_mask_into

    from_mask = relu_backward_mask_into(dout, out > 0, np.empty_like(dout))
    np.testing.assert_array_equal(from_mask, fast)  # the mask the convolution keeps: the same gradient


# ------------------------------------------------------------ work on every core
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("padding,strides", [("same", (1, 1)), ("valid", (2, 1))])
def test_conv_in_many_chunks_with_fused_relu_matches_the_reference(monkeypatch, rng, relu, padding, strides):
    # one image a chunk: chunks really run on the pool's threads
    monkeypatch.setattr("kernels.conv.CHUNK_IMAGES", 1)
    from kernels.activations import relu_backward_numpy

    x = rng.standard_normal((7, 9, 8, 3))
    w = rng.standard_normal((3, 3, 3, 5))
    b = rng.standard_normal(5)
    out, cache = conv2d_forward(x, w, b, strides, padding, impl="numba", relu=relu)
    ref, ref_cache = conv2d_forward(x, w, b, strides, padding, impl="numpy")
    if relu:
        ref = np.maximum(ref, 0)
        assert (out == 0).any() and (out > 0).any()
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    # the reference: ReLU's gradient first, then the plain convolution's
    dz = relu_backward_numpy(dout, ref) if relu else dout
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dz, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("relu", [False, True])
def test_pointwise_convolution_uses_the_input_as_its_patches(monkeypatch, rng, padding, relu):
    # a 1x1 stride-1 kernel: im2col would copy the input as it is; the fast
    # path multiplies the input itself and writes dx straight into place
    monkeypatch.setattr("kernels.conv.CHUNK_IMAGES", 2)
    x = rng.standard_normal((5, 6, 7, 8))
    w = rng.standard_normal((1, 1, 8, 3))
    b = rng.standard_normal(3)
    out, cache = conv2d_forward(x, w, b, (1, 1), padding, impl="im2col", relu=relu)
    ref, ref_cache = conv2d_forward(x, w, b, (1, 1), padding, impl="numpy", relu=relu)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for need_dx in (True, False):
        got, want = conv2d_backward(dout, cache, need_dx), conv2d_backward(dout, ref_cache, need_dx)
        for a, b_ in zip(got, want):
            if b_ is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["im2col", "winograd", "numpy"])
@pytest.mark.parametrize("pool,size,padding", [((2, 2), (8, 8), "valid"), ((2, 2), (7, 9), "valid"),
                                               ((2, 2), (7, 9), "same"), ((3, 2), (9, 8), "valid"),
                                               ((3, 3), (9, 9), "same")])
def test_max_pool_and_relu_backward_fused_into_the_convolution(monkeypatch, rng, impl, pool, size, padding):
    # the pooled gradient handed to the convolution gives what the pool's
    # backward, then the convolution's, give: bit for bit, chunk by chunk
    from kernels.pool import tiles_the_image

    monkeypatch.setattr("kernels.conv.CHUNK_IMAGES", 2)
    x = rng.standard_normal((5, *size, 16))
    w = rng.standard_normal((3, 3, 16, 4))
    b = rng.standard_normal(4)
    for strides in (None, (2, 2)):  # (2, 2) under a 3-wide pool: windows overlap, nothing to fuse
        for relu_mask in (True, False):
            out, cache = conv2d_forward(x, w, b, (1, 1), "same", impl=impl, relu=True, relu_mask=relu_mask)
            pooled, pool_cache = maxpool_forward(out, pool, strides, padding)
            assert tiles_the_image(pool_cache) == (strides is None or strides == pool)
            dpool = rng.standard_normal(pooled.shape)
            want = conv2d_backward(maxpool_backward(dpool, pool_cache), cache)
            got = conv2d_backward(dpool, cache, pool_cache=pool_cache)
            for a, b_ in zip(got, want):
                np.testing.assert_array_equal(a, b_)


def test_unpool_relu_twin(rng):
    from kernels.activations import relu_backward_numpy
    from kernels.pool import unpool_relu_into

    out = np.maximum(rng.standard_normal((3, 7, 9, 5)), 0)  # exact zeros: ReLU's kink
    pooled, pool_cache = maxpool_forward(out, (2, 2), None, "valid")
    dpool = rng.standard_normal(pooled.shape)
    want = relu_backward_numpy(maxpool_backward(dpool, pool_cache), out)
    for passes in (out, out > 0):
        dz = np.full(out.shape, np.nan)  # every cell written, the uncovered ones as zeros
        np.testing.assert_array_equal(unpool_relu_into(dpool, pool_cache[1], 2, 2, 0, 0, passes, dz), want)


def test_results_do_not_depend_on_the_number_of_cores(monkeypatch, rng):
    monkeypatch.setattr("kernels.conv.CHUNK_IMAGES", 2)
    x = rng.standard_normal((9, 10, 10, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    results = []
    for workers in (1, 2, 3):
        monkeypatch.setattr("kernels.parallel.WORKERS", workers)
        out, cache = conv2d_forward(x, w, b, (1, 1), "same", relu=True)
        grads = conv2d_backward(np.ones_like(out), cache)
        pooled, pool_cache = maxpool_forward(out)
        results.append([out, *grads, pooled, maxpool_backward(pooled, pool_cache)])
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("m,k,n", [(1, 5, 3), (128, 300, 10), (700, 64, 33), (64, 2000, 100)])
def test_parallel_matmul_equals_the_product(rng, m, k, n):
    from kernels.parallel import matmul

    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    np.testing.assert_allclose(matmul(a, b), a @ b, rtol=1e-5, atol=1e-4)
    # transposed views, as Dense's backward passes them
    np.testing.assert_allclose(matmul(b.T, a.T), b.T @ a.T, rtol=1e-5, atol=1e-4)
    small = matmul(a, b, rows_per_chunk=7)  # many blocks on the threads
    np.testing.assert_allclose(small, a @ b, rtol=1e-5, atol=1e-4)


def test_a_failing_chunk_raises_after_every_chunk_has_finished(monkeypatch):
    import threading

    from kernels.parallel import image_chunks, run_chunks

    monkeypatch.setattr("kernels.parallel.WORKERS", 2)
    done = []
    lock = threading.Lock()

    def work(group):
        for index, start, stop in group:
            if index == 0:
                raise ValueError("chunk 0 failed")
            with lock:
                done.append(index)

    with pytest.raises(ValueError, match="chunk 0 failed"):
        run_chunks(work, image_chunks(10, 1))
    # chunk 0's group stops at its failure; every other group runs to its end
    assert set(done) >= {i for i in range(10) if i % 2 == 1}


@given(seed=st.integers(0, 2**16), rate=st.sampled_from([0.1, 0.25, 0.5, 0.9]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_dropout_twins_agree(seed, rate, dtype):
    from kernels.dropout import dropout_backward_numba, dropout_backward_numpy, dropout_numba, dropout_numpy

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    u = rng.random(x.shape, dtype=np.float32)
    fast, keep = dropout_numba(x, u, rate)
    twin, twin_keep = dropout_numpy(x, u, rate)
    assert fast.dtype == dtype and keep.dtype == np.bool_
    np.testing.assert_array_equal(fast, twin)
    np.testing.assert_array_equal(keep, twin_keep)
    np.testing.assert_array_equal(fast == 0, (u < rate) | (x == 0))
    dout = rng.standard_normal(x.shape).astype(dtype)
    back = dropout_backward_numba(dout, keep, rate)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, dropout_backward_numpy(dout, keep, rate))
    np.testing.assert_array_equal(back == 0, ~keep | (dout == 0))


def test_adadelta_in_many_chunks_agrees(monkeypatch, rng):
    from kernels.optim import adadelta_update_numba, adadelta_update_numpy

    monkeypatch.setattr("kernels.optim.SPLIT", 7)
    param = rng.standard_normal((10, 9)).astype(np.float32)
    states = [[param.copy(), np.zeros_like(param), np.zeros_like(param)] for _ in range(2)]
    for _ in range(3):
        grad = rng.standard_normal(param.shape).astype(np.float32)
        adadelta_update_numba(states[0][0], grad, *states[0][1:], 1.0, 0.95, 1e-7)
        adadelta_update_numpy(states[1][0], grad, *states[1][1:], 1.0, 0.95, 1e-7)
    for fast, twin in zip(*states):
        np.testing.assert_allclose(fast, twin, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------ Winograd F(2x2, 3x3)
@st.composite
def winograd_cases(draw):
    n, h, w = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    cin, cout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.sampled_from(["valid", "same"]))
    if h < 3 or w < 3:
        padding = "same"
    return (n, h, w, cin, cout), padding, draw(st.sampled_from([np.float32, np.float64]))


@settings(max_examples=60)
@given(case=winograd_cases(), relu=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_winograd_matches_the_reference_path(case, relu, bias, seed):
    (n, h, w, cin, cout), padding, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    k = rng.standard_normal((3, 3, cin, cout)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if bias else None
    out, cache = conv2d_forward(x, k, b, (1, 1), padding, impl="winograd", relu=relu)
    ref, ref_cache = conv2d_forward(x, k, b, (1, 1), padding, impl="numpy", relu=relu)
    # F(4x4, 3x3) rounds float32 to ~5e-6 of the largest value (im2col: ~5e-7)
    unit = 2e-5 if dtype == np.float32 else 1e-12

    def assert_close(got, want, factor=1):
        np.testing.assert_allclose(got, want, rtol=0, atol=factor * unit * max(1.0, float(np.abs(want).max())))

    assert out.dtype == dtype and out.shape == ref.shape
    assert_close(out, ref)
    dout = rng.standard_normal(out.shape).astype(dtype)
    got, want = conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)
    for g, r in zip(got, want):
        if r is None:
            assert g is None
        else:
            assert g.dtype == dtype and g.shape == r.shape
            assert_close(g, r, factor=2)  # sums over more terms
    # a first layer skips its input gradient; the rest is unchanged
    dx, dw, _ = conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, got[1])


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_winograd_numpy_twin_agrees_with_im2col(rng, padding):
    from kernels import winograd

    x = rng.standard_normal((3, 7, 8, 2))
    k = rng.standard_normal((3, 3, 2, 5))
    ref, cache = conv2d_forward(x, k, None, (1, 1), padding, impl="numpy")
    g = cache.geometry
    pt, pl, oh, ow = g.pt, g.pl, g.oh, g.ow
    np.testing.assert_allclose(winograd.winograd_forward_numpy(x, k, pt, pl, oh, ow), ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(ref.shape)
    _, dw, _ = conv2d_backward(dout, cache)
    np.testing.assert_allclose(winograd.winograd_kernel_gradient_numpy(x, dout, pt, pl), dw, rtol=1e-12, atol=1e-12)


def test_winograd_runs_only_where_it_applies(rng):
    def algorithm(cin, kernel, strides, impl="numba", n=8, size=28):
        x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
        w = np.ones((*kernel, cin, 2), np.float32)
        return conv2d_forward(x, w, None, strides, "same", impl=impl)[1].algorithm

    assert algorithm(32, (3, 3), (1, 1)) == "winograd"  # the chapter's second layer
    assert algorithm(1, (3, 3), (1, 1)) == "im2col"  # its first: too few channels to pay
    assert algorithm(32, (3, 3), (1, 1), n=1) == "im2col"  # one image: the set-up does not pay
    assert algorithm(32, (3, 3), (1, 1), n=8, size=6) == "im2col"  # nor a few small ones
    assert algorithm(32, (3, 3), (1, 1), n=2, size=56) == "winograd"  # two large ones do
    assert algorithm(256, (3, 3), (1, 1), n=1, size=8) == "im2col"  # too many channels: it never pays
    assert algorithm(32, (3, 3), (2, 2)) == "im2col"
    assert algorithm(32, (2, 2), (1, 1)) == "im2col"
    assert algorithm(1, (3, 3), (1, 1), impl="winograd") == "winograd"
    assert algorithm(32, (3, 3), (1, 1), impl="im2col") == "im2col"
    x = rng.standard_normal((1, 6, 6, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="3x3 kernel, stride 1"):
        conv2d_forward(x, np.ones((5, 5, 1, 1), np.float32), None, (1, 1), "same", impl="winograd")
    with pytest.raises(ValueError, match="impl must be one of"):
        conv2d_forward(x, np.ones((3, 3, 1, 1), np.float32), None, (1, 1), "same", impl="fft")


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_winograd_in_many_chunks_and_both_tile_sizes(monkeypatch, rng, tile, padding):
    monkeypatch.setattr("kernels.conv.CHUNK_IMAGES", 2)
    monkeypatch.setattr("kernels.conv.WINOGRAD_TILE", tile)
    x = rng.standard_normal((9, 11, 10, 20))
    w = rng.standard_normal((3, 3, 20, 6))
    b = rng.standard_normal(6)
    out, cache = conv2d_forward(x, w, b, (1, 1), padding, impl="winograd", relu=True)
    assert cache.algorithm == "winograd"
    ref, ref_cache = conv2d_forward(x, w, b, (1, 1), padding, impl="numpy", relu=True)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-11)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(3, 13), w=st.integers(3, 13), c=st.integers(1, 9),
       same=st.booleans(), relu=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_written_out_f4_transforms_equal_the_generic_kernels(n, h, w, c, same, relu, dtype, seed):
    # the four F(4x4) kernels with the matrices' entries in the arithmetic
    # against the kernels that read the matrices, on every edge case of tiles
    from kernels import winograd as wg

    rng = np.random.default_rng(seed)
    pad = 1 if same else 0
    oh, ow = (h, w) if same else (h - 2, w - 2)
    th, tw = wg.tiles(oh, ow, 4)
    t = n * th * tw
    bt, at = wg.F4.BT.astype(dtype), wg.F4.AT.astype(dtype)
    eps = 1e-6 if dtype == np.float32 else 1e-14

    def close(got, want):  # to rounding, relative to the largest value (the transforms scale by up to ~100)
        np.testing.assert_allclose(got, want, rtol=0, atol=eps * max(np.abs(want).max(), 1))
    xp = np.zeros(wg.padded_shape(n, th, tw, 4, c), dtype)
    wg.pad_into(rng.standard_normal((n, h, w, c)).astype(dtype), pad, pad, xp)
    v = wg.input_transform_generic(xp, th, tw, bt, np.empty((36, t, c), dtype))
    close(wg.input_transform(xp, th, tw, bt, np.empty_like(v)), v)
    close(wg.input_transform_adjoint(v, th, tw, bt, np.empty_like(xp)),
          wg.input_transform_adjoint_generic(v, th, tw, bt, np.empty_like(xp)))
    mm = rng.standard_normal((36, t, c)).astype(dtype)
    bias = rng.standard_normal(c).astype(dtype)
    zero_window = rng.random((n, oh, ow)) < 0.3
    got = wg.output_transform(mm, at, bias, relu, th, tw, np.empty((n, oh, ow, c), dtype), zero_window)
    want = wg.output_transform_generic(mm, at, bias, relu, th, tw, np.empty((n, oh, ow, c), dtype), zero_window)
    close(got, want)
    exact = np.maximum(bias, 0) if relu else bias
    np.testing.assert_array_equal(got[zero_window], np.broadcast_to(exact, got[zero_window].shape))
    dout = rng.standard_normal((n, oh, ow, c)).astype(dtype)
    close(wg.gradient_transform(dout, at, th, tw, np.empty((36, t, c), dtype)),
          wg.gradient_transform_generic(dout, at, th, tw, np.empty((36, t, c), dtype)))


def test_winograd_gives_the_exact_bias_on_all_zero_windows(rng):
    # MNIST-like: a zero background. The direct sum gives exactly the bias
    # there; so must Winograd, or ReLU's kink and max-pool's ties move
    x = np.zeros((2, 12, 12, 16), np.float32)
    x[:, 4:7, 3:9] = rng.standard_normal((2, 3, 6, 16))
    w = rng.standard_normal((3, 3, 16, 8)).astype(np.float32)
    b = np.zeros(8, np.float32)
    out, _ = conv2d_forward(x, w, b, (1, 1), "same", impl="winograd", relu=True)
    ref, _ = conv2d_forward(x, w, b, (1, 1), "same", impl="numpy", relu=True)
    far = np.ones((12, 12), bool)
    far[3:8, 2:10] = False  # outputs whose window touches the nonzero block
    assert (ref[:, far] == 0).all()
    np.testing.assert_array_equal(out[:, far], 0)
    np.testing.assert_array_equal(out > 0, ref > 0)  # ReLU's mask is im2col's
    _, pool_w = maxpool_forward(out)
    _, pool_r = maxpool_forward(ref)
    np.testing.assert_array_equal(pool_w[1], pool_r[1])  # ties resolved alike


@pytest.mark.parametrize("impl", ["im2col", "winograd", "numpy"])
def test_relu_gradient_is_the_same_from_the_mask_and_from_the_output(rng, impl):
    # training keeps a byte mask; inference keeps a reference to the output
    x = rng.standard_normal((9, 7, 7, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out_a, with_mask = conv2d_forward(x, w, b, (1, 1), "same", impl=impl, relu=True)
    out_b, with_output = conv2d_forward(x, w, b, (1, 1), "same", impl=impl, relu=True, relu_mask=False)
    assert with_mask[5].dtype == np.bool_ and with_output[5] is out_b
    np.testing.assert_array_equal(out_a, out_b)
    dout = rng.standard_normal(out_a.shape).astype(np.float32)
    for a, b_ in zip(conv2d_backward(dout, with_mask), conv2d_backward(dout, with_output)):
        np.testing.assert_array_equal(a, b_)


def test_dropout_in_many_chunks_agrees(monkeypatch, rng):
    from kernels.dropout import dropout_backward_numba, dropout_backward_numpy, dropout_numba, dropout_numpy

    monkeypatch.setattr("kernels.dropout.SPLIT", 7)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    u = rng.random(x.shape, dtype=np.float32)
    out, keep = dropout_numba(x, u, 0.25)
    want, want_keep = dropout_numpy(x, u, 0.25)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(keep, want_keep)
    np.testing.assert_array_equal(dropout_backward_numba(x, keep, 0.25), dropout_backward_numpy(x, keep, 0.25))


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_relu_twin(rng, dtype, relu):
    from kernels.conv import add_bias_relu

    out = rng.standard_normal((37, 5)).astype(dtype)
    bias = rng.standard_normal(5).astype(dtype)
    want = out + bias
    if relu:
        want = np.maximum(want, 0)
    np.testing.assert_array_equal(add_bias_relu(out.copy(), bias, relu), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_sums_twin(rng, dtype):
    from kernels.conv import add_channel_sums

    d = rng.standard_normal((3, 5, 4, 6)).astype(dtype)
    total = np.ones(6, dtype)
    add_channel_sums(d, total)
    np.testing.assert_allclose(total, 1 + d.sum(axis=(0, 1, 2)), rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_kernels_work_in_a_forked_child(rng):
    # a forked child inherits the thread pool object but not its threads;
    # kernels/parallel.py makes a new pool there instead of waiting forever
    import multiprocessing

    x = rng.standard_normal((16, 10, 10, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 4)).astype(np.float32)
    expected, _ = conv2d_forward(x, w, None, (1, 1), "same")  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_convolve_in_child, (x, w)).get(timeout=120)
    np.testing.assert_array_equal(got, expected)


def _convolve_in_child(x, w):
    return conv2d_forward(x, w, None, (1, 1), "same")[0]

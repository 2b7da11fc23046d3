"""The kernels of the modern CNN layers against their NumPy twins, and what
the registry's generic checks cannot see: whole channels dropped, bilinear
weights as TensorFlow's, gradients that do not depend on the thread count,
a MobileNet block, a small U-Net and a ResNeXt block that train as Keras's do
for 20 steps in float64."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnn
from kernels import parallel
from kernels.depthwise import depthwise_backward, depthwise_forward
from kernels.resample import bilinear_forward, bilinear_reference, resize_forward
from kernels.transpose import conv2d_transpose_backward, conv2d_transpose_forward


@st.composite
def window_cases(draw):
    k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    d = (1, 1) if s != (1, 1) else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["valid", "same"]))
    h = draw(st.integers((k[0] - 1) * d[0] + 1, 8))
    w = draw(st.integers((k[1] - 1) * d[1] + 1, 8))
    return {"n": draw(st.integers(1, 3)), "h": h, "w": w, "c": draw(st.integers(1, 4)), "m": draw(st.integers(1, 3)),
            "k": k, "s": s, "d": d, "padding": padding}


@settings(max_examples=40, deadline=None)
@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_depthwise_loops_match_their_numpy_twin(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"]))
    w = rng.standard_normal((*case["k"], case["c"], case["m"]))
    b = rng.standard_normal(case["c"] * case["m"])
    args = (case["s"], case["padding"], case["d"])
    out, cache = depthwise_forward(x, w, b, *args, impl="numba")
    ref, ref_cache = depthwise_forward(x, w, b, *args, impl="numpy")
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(depthwise_backward(dout, cache), depthwise_backward(dout, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(case=window_cases(), seed=st.integers(0, 2**16))
def test_transposed_convolution_kernels_match_their_numpy_twins(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"]))
    w = rng.standard_normal((*case["k"], case["m"], case["c"]))
    args = (case["s"], case["padding"], None, case["d"])
    out, cache = conv2d_transpose_forward(x, w, None, *args, impl="numba")
    ref, ref_cache = conv2d_transpose_forward(x, w, None, *args, impl="numpy")
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(conv2d_transpose_backward(dout, cache), conv2d_transpose_backward(dout, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,out", [((3, 4), (6, 8)), ((3, 3), (9, 6)), ((5, 2), (7, 3)), ((1, 1), (2, 2))])
def test_bilinear_products_match_the_four_neighbour_formula_and_tensorflow(keras, shape, out, rng):
    import tensorflow as tf

    x = rng.standard_normal((2, *shape, 3))
    got, _ = bilinear_forward(x, *out)
    np.testing.assert_allclose(got, bilinear_reference(x, *out), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, tf.image.resize(x, out, method="bilinear").numpy(), rtol=1e-6, atol=1e-6)
    for size in (out, shape[::-1], (max(1, shape[0] // 2), shape[1] * 3)):  # up, down and both
        for method in ("bilinear", "nearest"):
            resized, _ = resize_forward(x, *size, method)
            np.testing.assert_allclose(resized, tf.image.resize(x, size, method=method).numpy(), rtol=1e-6,
                                       atol=1e-6, err_msg=f"{method} {shape} -> {size}")


def test_depthwise_gradients_are_the_same_bits_on_one_thread_and_two(rng):
    x = rng.standard_normal((13, 9, 9, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 2)).astype(np.float32)
    saved = parallel.WORKERS
    results = []
    try:
        for count in (1, 2):
            parallel.set_workers(count)
            out, cache = depthwise_forward(x, w, None, (1, 1), "same")
            results.append((out, *depthwise_backward(np.ones_like(out), cache)[:2]))
    finally:
        parallel.set_workers(saved)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_spatial_dropout_drops_whole_channels_at_the_rate():
    cnn.set_seed(3)
    layer = cnn.layers.SpatialDropout2D(0.4)
    x = np.ones((200, 5, 5, 8), dtype=np.float32)
    out = layer(x, training=True)
    per_map = out.reshape(200, 25, 8)
    assert np.all(per_map.min(axis=1) == per_map.max(axis=1))  # each map all dropped or all kept
    kept = per_map[:, 0] > 0
    assert abs(kept.mean() - 0.6) < 0.03 and np.allclose(per_map[:, 0][kept], 1 / 0.6)
    np.testing.assert_array_equal(layer(x), x)  # the identity at inference


def test_rescaling_applies_in_inference_and_what_is_not_supported_is_named():
    np.testing.assert_allclose(cnn.layers.Rescaling(1 / 255)(np.full((1, 2, 2, 1), 255.0)), 1.0)
    with pytest.raises(cnn.InputError, match="interpolation='bicubic' is not supported"):
        cnn.layers.UpSampling2D(interpolation="bicubic")
    with pytest.raises(cnn.InputError, match="output_padding=2 must be below the strides"):
        cnn.layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(cnn.InputError, match="cropping .* leaves nothing"):
        cnn.layers.Cropping2D(2).build((4, 4, 1))
    with pytest.raises(cnn.InputError, match="3 scale values for samples of \\(4, 4, 2\\)"):
        cnn.layers.Rescaling([1.0, 2.0, 3.0]).build((4, 4, 2))


def mobilenet_block(k, seed=0):
    """MobileNet v1/v2 pieces: a depthwise 3x3 stride 2 with relu6, a pointwise
    Conv2D, a separable convolution, hard swish, global pooling."""
    L = k.layers
    inputs = k.Input((12, 12, 3))
    x = L.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu6")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    x = L.Activation("hard_swish")(x)
    x = L.Conv2D(6, 1)(x)
    x = L.SeparableConv2D(5, 3, padding="same", activation="relu")(x)
    x = L.SpatialDropout2D(0.0)(x)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(3, activation="softmax")(x)
    return k.Model(inputs, outputs)


def small_unet(k):
    """A two-level U-Net: down by max-pooling, up by a transposed convolution
    and by upsampling, skip connections concatenated (one cropped). Nearest
    upsampling: TensorFlow resizes bilinearly in float32 even for float64
    images, so a float64 comparison would measure its rounding (bilinear is
    checked in float32 by the registry and against tf.image.resize above)."""
    L = k.layers
    inputs = k.Input((8, 8, 2))
    c1 = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    p1 = L.MaxPooling2D(2)(c1)
    c2 = L.Conv2D(6, 3, padding="same", activation="relu")(p1)
    p2 = L.MaxPooling2D(2)(c2)
    b = L.Conv2D(8, 3, padding="same", activation="relu")(p2)
    u2 = L.Conv2DTranspose(6, 2, strides=2)(b)
    x = L.Concatenate()([u2, c2])
    x = L.Conv2D(6, 3, padding="same", activation="relu")(x)
    u1 = L.UpSampling2D()(x)
    padded = L.ZeroPadding2D(1)(c1)
    x = L.Concatenate()([u1, L.Cropping2D(1)(padded)])
    outputs = L.Conv2D(1, 1, activation="sigmoid")(x)
    return k.Model(inputs, outputs)


def resnext_block(k):
    """A ResNeXt-style block: grouped 3x3 convolutions, GroupNormalization and
    LayerNormalization, a residual sum, after an input resized (nearest) and
    centre-cropped: the layers the two models above leave out."""
    L = k.layers
    inputs = k.Input((10, 9, 4))
    x = L.Resizing(14, 12, interpolation="nearest")(inputs)
    x = L.CenterCrop(12, 12)(x)
    x = L.Conv2D(8, 1)(x)
    y = L.Conv2D(8, 3, padding="same", groups=4)(x)
    y = L.GroupNormalization(groups=2)(y)
    y = L.Activation("relu")(y)
    y = L.Conv2D(8, 3, padding="same", groups=2, use_bias=False)(y)
    y = L.LayerNormalization(axis=[1, 2, 3])(y)
    x = L.Add()([x, y])
    x = L.LayerNormalization()(x)
    x = L.Conv2D(4, 3, strides=2)(x)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(3, activation="softmax")(x)
    return k.Model(inputs, outputs)


@pytest.mark.parametrize("build,target", [(mobilenet_block, "classes"), (small_unet, "mask"),
                                          (resnext_block, "classes")])
def test_modern_models_train_as_kerass_step_by_step(float64, build, target):
    keras = float64
    cnn.set_seed(11)
    ours, theirs = build(cnn), build(keras)
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in theirs.layers
                                                                if type(layer).__name__ != "InputLayer"]
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(12)
    shape = tuple(theirs.inputs[0].shape[1:])
    x = rng.uniform(0, 255, (6, *shape)) if build is mobilenet_block else rng.standard_normal((6, *shape))
    if target == "classes":
        y, loss = np.eye(3)[rng.integers(0, 3, 6)], "categorical_crossentropy"
    else:
        y, loss = (rng.uniform(size=(6, 8, 8, 1)) > 0.5).astype(float), "binary_crossentropy"
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-9, atol=1e-12)
    # SGD with momentum: Adam's m / sqrt(v) would blow a gradient's last-bit noise up to a full step.
    # Keras keeps its hyperparameters in float32, so they are float32-exact here (0.9 is not: 1e-8 apart in 20 steps)
    ours.compile(optimizer=cnn.optimizers.SGD(2**-4, momentum=0.875), loss=loss)
    theirs.compile(optimizer=keras.optimizers.SGD(2**-4, momentum=0.875), loss=loss)
    for _ in range(20):
        assert ours.train_on_batch(x, y) == pytest.approx(float(theirs.train_on_batch(x, y)), rel=1e-12)
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)
    evaluated = ours.evaluate(x, y)  # no metrics: the loss alone, a float, as Keras 3 returns it
    assert isinstance(evaluated, float) and evaluated == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-8)


def test_random_flip_flips_whole_images_at_half_the_draws_and_a_seed_repeats_them():
    x = np.arange(400 * 2 * 3, dtype=np.float32).reshape(400, 2, 3, 1)
    cnn.set_seed(4)
    out = cnn.layers.RandomFlip("horizontal")(x, training=True)
    flipped = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(flipped | np.all(out == x, axis=(1, 2, 3)))  # each image flipped whole, or left alone
    assert abs(flipped.mean() - 0.5) < 0.08
    both = cnn.layers.RandomFlip(seed=9)(x, training=True)
    again = cnn.layers.RandomFlip(seed=9)(x, training=True)
    np.testing.assert_array_equal(both, again)
    changed = ~np.all(both == x, axis=(1, 2, 3))
    np.testing.assert_array_equal(both[changed], x[changed][:, ::-1, ::-1])  # one draw flips both axes
    np.testing.assert_array_equal(cnn.layers.RandomFlip()(x), x)  # the identity at inference


def test_the_explorer_explains_a_grouped_convolutions_cell_from_its_own_group():
    from cnn.explorer.server import serve_in_thread
    from helpers import explorer_api

    cnn.set_seed(6)
    model = cnn.Sequential([cnn.Input((28, 28, 1)), cnn.layers.Conv2D(4, 3, activation="relu", name="a"),
                            cnn.layers.Conv2D(6, 3, groups=2, name="grouped"), cnn.layers.Flatten(),
                            cnn.layers.Dense(10, activation="softmax")])
    srv, url = serve_in_thread(model)
    try:
        call = explorer_api(url)
        predicted = call("/api/predict", {"sample": 1})
        for channel in (1, 4):  # one filter of each group
            e = call("/api/explain", {"input": predicted["input"], "layer": 1, "row": 7, "col": 11,
                                      "channel": channel})
            assert e["equal"] and len(e["weights"]) == 2  # the two channels of its group, not all four
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_kernels_are_tensorflows_transform_and_their_twin(keras, mode, interpolation):
    """The kernel against TensorFlow's ImageProjectiveTransformV3 (what Keras's
    ops.image.affine_transform runs) for rotations, zooms and shifts that
    reach outside the image, and the compiled loops against the NumPy twin,
    forward and adjoint."""
    from kernels.affine import affine_backward, affine_forward

    rng = np.random.default_rng(21)
    x = rng.standard_normal((5, 7, 9, 2)).astype(np.float32)
    angle, zoom = rng.uniform(-1.2, 1.2, 5), rng.uniform(0.5, 1.8, 5)
    t = np.zeros((5, 8), np.float32)
    t[:, 0], t[:, 1], t[:, 2] = np.cos(angle) * zoom, -np.sin(angle) * zoom, rng.uniform(-12, 12, 5)
    t[:, 3], t[:, 4], t[:, 5] = np.sin(angle) * zoom, np.cos(angle) * zoom, rng.uniform(-12, 12, 5)
    theirs = keras.ops.image.affine_transform(x, t, interpolation=interpolation, fill_mode=mode, fill_value=0.5)
    out, cache = affine_forward(x, t, mode, 0.5, interpolation)
    twin, twin_cache = affine_forward(x, t, mode, 0.5, interpolation, impl="numpy")
    np.testing.assert_allclose(out, np.asarray(theirs), atol=2e-6)
    np.testing.assert_allclose(out, twin, atol=1e-6)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(affine_backward(dout, cache), affine_backward(dout, twin_cache), atol=1e-5)
    # the adjoint: <S x, d> = <x, S^T d> (the fill value's constant term aside)
    zero = affine_forward(np.zeros_like(x), t, mode, 0.5, interpolation)[0]
    assert np.sum((out - zero) * dout) == pytest.approx(np.sum(x * affine_backward(dout, cache)), rel=1e-4)


def test_random_translation_draws_kerass_transform_and_a_seed_repeats_it(keras):
    layer = cnn.layers.RandomTranslation(0.3, (-0.1, 0.4), fill_mode="constant", seed=7)
    x = np.random.default_rng(1).standard_normal((4, 6, 8, 3)).astype(np.float32)
    out = layer(x, training=True)
    t = layer.last_transforms
    dy, dx = -t[:, 5], -t[:, 2]
    assert np.all(np.abs(dy) <= 0.3 * 6) and np.all((dx >= -0.1 * 8) & (dx <= 0.4 * 8))
    theirs = keras.layers.RandomTranslation(0.3, (-0.1, 0.4), fill_mode="constant")
    import tensorflow as tf

    matrix = theirs._get_translation_matrix(tf.constant(np.stack([dx, dy], axis=1)))
    np.testing.assert_allclose(t, np.asarray(matrix), rtol=1e-6)  # Keras's matrix for these shifts
    np.testing.assert_allclose(out, np.asarray(keras.ops.image.affine_transform(x, t, fill_mode="constant")),
                               atol=2e-6)
    again = cnn.layers.RandomTranslation(0.3, (-0.1, 0.4), fill_mode="constant", seed=7)(x, training=True)
    np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(layer(x), x)  # the identity at inference


@pytest.mark.parametrize("make,theirs", [
    (lambda: cnn.layers.RandomRotation((-0.2, 0.3), seed=4), "rotation"),
    (lambda: cnn.layers.RandomZoom((-0.3, 0.4), seed=5), "zoom"),
    (lambda: cnn.layers.RandomZoom(0.3, width_factor=(-0.2, 0.1), fill_mode="constant", seed=6), "zoom"),
])
def test_rotation_and_zoom_draw_kerass_matrices(keras, make, theirs):
    """The engine's transform for its drawn angle or zooms equals the matrix
    Keras builds from the same numbers, and the output equals Keras's
    affine_transform with it."""
    import tensorflow as tf

    layer = make()
    x = np.random.default_rng(2).standard_normal((5, 7, 9, 2)).astype(np.float32)
    out = layer(x, training=True)
    t = layer.last_transforms
    if theirs == "rotation":
        reference = keras.layers.RandomRotation(0.2)
        # the angle back from the matrix (no zoom): Keras's matrix for it
        angle = np.rad2deg(np.arctan2(t[:, 3], t[:, 0]))
        assert np.all((angle >= -0.2 * 360 - 1e-3) & (angle <= 0.3 * 360 + 1e-3))
        matrix = reference._compute_affine_matrix(
            center_x=0.5, center_y=0.5, angle=tf.constant(angle), translate_x=tf.zeros(5), translate_y=tf.zeros(5),
            scale=tf.ones(5), shear_x=tf.zeros(5), shear_y=tf.zeros(5), height=7, width=9)
    else:
        reference = keras.layers.RandomZoom(0.3)
        zooms = np.stack([t[:, 0], t[:, 4]], axis=1)
        assert np.all((zooms > 0) & (zooms < 2))
        matrix = reference._get_zoom_matrix(tf.constant(zooms), 7, 9)
    np.testing.assert_allclose(t, np.asarray(matrix), rtol=1e-5, atol=1e-5)
    expected = keras.ops.image.affine_transform(x, t, fill_mode=layer.fill_mode, interpolation=layer.interpolation)
    np.testing.assert_allclose(out, np.asarray(expected), atol=2e-6)
    np.testing.assert_array_equal(layer(x), x)  # the identity at inference


def test_augmentation_gives_the_same_batches_twice_from_one_seed_and_only_in_fit():
    def run():
        cnn.set_seed(13)
        model = cnn.Sequential([cnn.Input((8, 8, 1)), cnn.layers.RandomFlip("horizontal"),
                                cnn.layers.RandomTranslation(0.2, 0.2), cnn.layers.RandomRotation(0.1),
                                cnn.layers.RandomZoom(0.2), cnn.layers.Conv2D(2, 3), cnn.layers.Flatten(),
                                cnn.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((16, 8, 8, 1)).astype(np.float32), np.eye(3)[rng.integers(0, 3, 16)]
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"]
        return history, model.predict(x), model
    first, second = run(), run()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    model = first[2]
    x = np.random.default_rng(1).standard_normal((4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), model.predict(x))  # inference draws nothing


def test_random_contrast_draws_as_keras_reads_its_factor(keras):
    x = np.random.default_rng(3).uniform(50, 200, (400, 4, 4, 2)).astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    for factor, low, high in ((0.5, 1.0, 1.5), ((0.2, 0.6), 0.8, 1.6)):
        ours = cnn.layers.RandomContrast(factor, seed=1)(x, training=True)
        theirs = np.asarray(keras.layers.RandomContrast(factor, seed=1)(x, training=True))
        for out in (ours, theirs):
            drawn = ((out - mean) / (x - mean))[:, 0, 0, 0]
            assert drawn.min() >= low - 1e-4 and drawn.max() <= high + 1e-4
            assert drawn.min() < low + 0.05 and drawn.max() > high - 0.05  # the whole range, both engines
    assert cnn.layers.RandomContrast(0.5).factor == list(keras.layers.RandomContrast(0.5).factor)


def test_random_crop_windows_are_slices_at_every_offset_and_a_seed_repeats_them():
    x = np.arange(2 * 6 * 7 * 1, dtype=np.float32).reshape(2, 6, 7, 1)
    layer = cnn.layers.RandomCrop(4, 3, seed=5)
    seen = set()
    for _ in range(200):
        out = layer(x, training=True)
        top, left, rows, cols = layer.last_window
        assert (rows, cols) == (4, 3) and 0 <= top <= 2 and 0 <= left <= 4
        np.testing.assert_array_equal(out, x[:, top:top + 4, left:left + 3])  # one window for the batch
        seen.add((top, left))
    assert seen == {(t, l) for t in range(3) for l in range(5)}  # every offset is drawn
    again = cnn.layers.RandomCrop(4, 3, seed=5)
    first = cnn.layers.RandomCrop(4, 3, seed=5)(x, training=True)
    np.testing.assert_array_equal(again(x, training=True), first)
    cnn.set_seed(3)
    a = [cnn.layers.RandomCrop(4, 3)(x, training=True) for _ in range(3)]
    cnn.set_seed(3)
    b = [cnn.layers.RandomCrop(4, 3)(x, training=True) for _ in range(3)]
    for one, two in zip(a, b):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("shape,crop", [((9, 6, 2), (4, 4)), ((5, 8, 1), (6, 3)), ((3, 3, 2), (5, 7))])
def test_random_crop_at_inference_is_kerass_aspect_preserving_resize(keras, shape, crop):
    # what keras.layers.RandomCrop documents (smart_resize) and Keras 3.15 does not do (#21868)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    layer = cnn.layers.RandomCrop(*crop, seed=1)
    out = layer(x)
    theirs = keras.layers.Resizing(*crop, crop_to_aspect_ratio=True)(x)
    np.testing.assert_allclose(out, np.asarray(theirs), atol=2e-6)
    np.testing.assert_array_equal(layer(x), out)  # nothing drawn


def test_random_brightness_draws_as_keras_reads_its_factor(keras):
    x = np.random.default_rng(3).uniform(0.3, 0.7, (400, 3, 3, 1)).astype(np.float32)
    for factor, value_range, low, high in ((0.2, (0, 1), -0.2, 0.2), ((0.1, -0.3), (-1, 1), -0.6, 0.2)):
        ours = cnn.layers.RandomBrightness(factor, value_range=value_range, seed=1)(x, training=True)
        theirs = np.asarray(keras.layers.RandomBrightness(factor, value_range=value_range, seed=1)(x, training=True))
        for out in (ours, theirs):
            delta = (out - x)[:, 0, 0, 0]  # one per image, the whole image shifted alike
            np.testing.assert_allclose((out - x).reshape(400, -1).std(axis=1), 0, atol=1e-6)
            assert delta.min() >= low - 1e-5 and delta.max() <= high + 1e-5
            assert delta.min() < low + 0.02 and delta.max() > high - 0.02  # the whole range, both engines
        assert cnn.layers.RandomBrightness(factor, value_range).factor == list(
            keras.layers.RandomBrightness(factor, value_range).factor)
    clipped = cnn.layers.RandomBrightness((0.9, 0.9), value_range=(0, 1), seed=0)(x, training=True)
    assert clipped.max() == 1.0 and (clipped == 1.0).all()  # brighter than white is white
    np.testing.assert_array_equal(cnn.layers.RandomBrightness(0.5)(x), x)  # the identity at inference

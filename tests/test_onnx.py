"""ONNX export: every registered layer and whole models written by
cnn.onnx, checked by onnx.checker and run by ONNX Runtime, whose outputs
equal the engine's predictions within float32 tolerance."""
import numpy as np
import pytest

import cnn
from cnn.layers import BUILT_IN
from cnn.onnx import CONVERTERS, OnnxExportError
from cnn.testing import example_input
from test_registry import CASES, IDS, _model, _perturbed

onnx = pytest.importorskip("onnx") if False else __import__("onnx")  # a test dependency: missing is a failure
ort = __import__("onnxruntime")


def run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = x if isinstance(x, list) else [x]
    out = session.run(None, {i.name: v.astype(np.float32) for i, v in zip(session.get_inputs(), feeds)})
    return out, session


def test_every_registered_layer_has_a_converter():
    assert set(BUILT_IN) - {"InputLayer"} <= set(CONVERTERS), set(BUILT_IN) - set(CONVERTERS)


@pytest.mark.parametrize("cls,example", CASES, ids=IDS)
def test_every_layer_example_runs_in_onnx_runtime_as_in_the_engine(tmp_path, cls, example):
    cnn.set_seed(0)
    model, _ = _model(cls, example)
    _perturbed(model)
    x = example_input(example, dtype=np.float32)
    if isinstance(x, list):
        x = [np.concatenate([one, one[:1] * 0.5]) for one in x]
    else:
        x = np.concatenate([x, x[:1] * 0.5])  # another batch size than any the file was written for
    want = model.predict(x, verbose=0)
    model.save(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)
    (got,), session = run(tmp_path / "m.onnx", x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1, example.reduction) * max(1, np.abs(want).max()))


@pytest.mark.parametrize("arch", ["chapter", "lenet5", "small_vgg", "resnet8"])
def test_whole_models_on_real_digits(tmp_path, arch):
    from cnn import architectures

    cnn.set_seed(1)
    model = getattr(architectures, arch)()
    (x, y), (test_x, _) = cnn.datasets.mnist.load_data()
    x = x[:256, :, :, None].astype(np.float32) / 255
    labels = np.eye(10)[y[:256]] if arch == "chapter" else y[:256]  # the chapter compiles categorical cross-entropy
    model.fit(x, labels, epochs=1, batch_size=64, verbose=0)  # trained: BatchNorm's moving statistics moved
    digits = test_x[:100, :, :, None].astype(np.float32) / 255
    want = model.predict(digits)
    cnn.onnx.export(model, tmp_path / f"{arch}.onnx")
    (got,), session = run(tmp_path / f"{arch}.onnx", digits)
    assert [i.shape for i in session.get_inputs()] == [["batch", 28, 28, 1]]  # NHWC, any batch
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_a_graph_with_two_inputs_and_two_outputs(tmp_path):
    L = cnn.layers
    a, b = cnn.Input((8, 8, 2), name="left"), cnn.Input((8, 8, 2), name="right")
    shared = L.Conv2D(3, 3, padding="same", activation="relu", name="tower")
    x = L.Concatenate()([shared(a), shared(b)])
    x = L.BatchNormalization()(x)
    first = L.Dense(4, activation="softmax", name="classes")(L.GlobalAveragePooling2D()(x))
    second = L.Conv2D(1, 1, activation="sigmoid", name="mask")(L.Add()([shared(a), shared(b)]))
    model = cnn.Model([a, b], [first, second])
    _perturbed(model)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((5, 8, 8, 2)).astype(np.float32) for _ in range(2)]
    want = model.predict(xs)
    model.save(tmp_path / "two.onnx")
    got, session = run(tmp_path / "two.onnx", xs)
    assert [i.name for i in session.get_inputs()] == ["left", "right"]
    assert [o.name for o in session.get_outputs()] == ["classes_output", "mask_output"]
    for one, two in zip(got, want):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-6)


def test_a_layer_without_a_converter_is_refused_by_name_and_nothing_is_written(tmp_path):
    class Scale(cnn.layers.Layer, register=False):
        pass

    model = cnn.Sequential([cnn.Input((4,)), cnn.layers.Dense(3), Scale(name="my_scale")])
    with pytest.raises(OnnxExportError, match="layer 'my_scale' \\(Scale\\) has no ONNX converter"):
        model.save(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OnnxExportError, match="not built"):
        cnn.onnx.export(cnn.Sequential([cnn.layers.Dense(3)]), tmp_path / "n.onnx")


def test_cnn_export_writes_a_file_onnx_runtime_runs(tmp_path):
    from test_cli import cnn as command

    model = cnn.architectures.small()
    model.save(tmp_path / "small.npz")
    result = command("export", tmp_path / "small.npz", tmp_path / "small.onnx")
    assert result.returncode == 0, result.stderr
    assert "small.onnx" in result.stdout and "input 'input' (batch, 28, 28, 1)" in result.stdout
    digits = cnn.datasets.mnist.load_data()[1][0][:10, :, :, None].astype(np.float32) / 255
    (got,), _ = run(tmp_path / "small.onnx", digits)
    np.testing.assert_allclose(got, cnn.load_model(tmp_path / "small.npz").predict(digits), rtol=1e-4, atol=1e-6)
    refused = command("export", tmp_path / "small.npz", tmp_path / "small.txt")
    assert refused.returncode == 1 and "an .onnx file name" in refused.stderr

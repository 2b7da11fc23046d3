"""ONNX import: CNNs written in PyTorch, exported by torch.onnx.export (both
of its exporters), load as engine models that predict what PyTorch
predicts, fine-tune with fit, save both ways and open in cnn visualize and
the explorer; hostile ONNX files are refused before any tensor is decoded."""
import warnings

import numpy as np
import pytest

import cnn
from cnn.errors import CNNError, ModelFileError

onnx = __import__("onnx")  # test dependencies: a missing one is a failure, never a skip
torch = __import__("torch")
nn = torch.nn


class LeNet(nn.Module):
    """LeNet-5 as PyTorch courses write it, ending in a softmax."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.pool = nn.AvgPool2d(2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(torch.tanh(self.conv1(x)))
        x = self.pool(torch.tanh(self.conv2(x)))
        x = torch.flatten(x, 1)  # (C, H, W) order: the Dense that reads it is permuted on import
        return torch.softmax(self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x))))), dim=1)


class SmallVGG(nn.Module):
    def __init__(self):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(*block(1, 8), *block(8, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2),
                                      nn.Dropout(0.2))
        self.head = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.features(x).reshape(x.shape[0], -1))  # exported as Shape, Gather, Concat, Reshape


class BasicBlockNet(nn.Module):
    """A ResNet basic block with a projection shortcut (stride 2), after a stem."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv1, self.bn1 = nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.shortcut = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.pool(torch.relu(y + self.shortcut(x))), 1))


class MobileUNet(nn.Module):
    """Depthwise, grouped and transposed convolutions, ReLU6 and hard-swish, nearest upsampling, a concatenation."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.depthwise = nn.Conv2d(8, 16, 3, padding=1, groups=8)
        self.grouped = nn.Conv2d(16, 8, 1, groups=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(4 + 8, 2, 1)

    def forward(self, x):
        d = nn.functional.relu6(self.down(x))
        y = nn.functional.hardswish(self.grouped(self.depthwise(d)))
        return self.out(torch.cat([self.up(y), self.upsample(d)], dim=1))


def digits(n=64):
    (_, _), (x, y) = cnn.datasets.mnist.load_data()
    return x[:n, :, :, None].astype(np.float32) / 255, y[:n]


def exported(module, path, exporter, batch_norm_kept=False):
    """``module`` (eval mode, BatchNorm statistics moved by a few training batches) exported to ``path``."""
    torch.manual_seed(0)
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.rand(16, 1, 28, 28) * 2)
    module.eval()
    example = (torch.rand(2, 1, 28, 28),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(module, example, str(path), dynamo=True, external_data=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        else:  # the TorchScript exporter; without constant folding BatchNorm stays a node of its own
            torch.onnx.export(module, example, str(path), dynamo=False, input_names=["image"],
                              dynamic_axes={"image": {0: "batch"}}, do_constant_folding=not batch_norm_kept)
    return module


def torch_says(module, x):
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize("make", [LeNet, SmallVGG, BasicBlockNet, MobileUNet])
def test_pytorch_models_predict_here_as_in_pytorch(tmp_path, make, exporter):
    module = exported(make(), tmp_path / "m.onnx", exporter)
    model = cnn.load_model(tmp_path / "m.onnx")
    x, _ = digits()
    want = torch_says(module, x)
    got = model.predict(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * max(1.0, float(np.abs(want).max())))


def test_the_imported_layers_are_the_engines_own(tmp_path):
    exported(SmallVGG(), tmp_path / "vgg.onnx", "torchscript", batch_norm_kept=True)
    model = cnn.onnx.load(tmp_path / "vgg.onnx")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 3 and kinds.count("Conv2D") == 3 and kinds[-1] == "Dense"
    assert model.input_shape == (28, 28, 1) and model.output_shape == (10,)
    bn = next(layer for layer in model.layers if type(layer).__name__ == "BatchNormalization")
    assert bn.epsilon == pytest.approx(1e-5) and not np.allclose(bn.params["moving_mean"], 0)  # PyTorch's statistics
    exported(MobileUNet(), tmp_path / "u.onnx", "torchscript")
    mobile = cnn.onnx.load(tmp_path / "u.onnx")
    kinds = {type(layer).__name__ for layer in mobile.layers}
    assert {"DepthwiseConv2D", "Conv2DTranspose", "UpSampling2D", "Concatenate"} <= kinds
    assert any(getattr(layer, "groups", 1) == 2 for layer in mobile.layers)


@pytest.mark.parametrize("make", [LeNet, SmallVGG, BasicBlockNet])
def test_an_imported_model_fine_tunes_saves_both_ways_and_is_explored(tmp_path, make):
    import subprocess
    import sys

    from cnn.explorer.server import serve_in_thread
    from helpers import explorer_api

    module = exported(make(), tmp_path / "m.onnx", "torchscript", batch_norm_kept=True)
    model = cnn.load_model(tmp_path / "m.onnx")
    (train_x, train_y), _ = cnn.datasets.mnist.load_data()
    x, y = train_x[:1000, :, :, None].astype(np.float32) / 255, train_y[:1000]
    np.testing.assert_allclose(model.predict(x[:50]), torch_says(module, x[:50]), rtol=1e-4, atol=2e-5)
    probabilities = make is LeNet  # the others end in logits, as PyTorch models usually do
    loss = "sparse_categorical_crossentropy" if probabilities else cnn.losses.SparseCategoricalCrossentropy(
        from_logits=True)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0).history
    after = model.evaluate(x, y, verbose=0)
    assert history["loss"][-1] < history["loss"][0] and after[1] > before[1] + (0.3 if make is LeNet else 0.1), (
        before, after)
    for name in ("tuned.npz", "tuned.keras"):
        model.save(tmp_path / name)
        np.testing.assert_array_equal(cnn.load_model(tmp_path / name).predict(x[:20]), model.predict(x[:20]))
    result = subprocess.run([sys.executable, "-m", "cnn", "visualize", tmp_path / "tuned.npz", "--n-test", "200",
                             "--out", tmp_path / "pictures"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "pictures").iterdir()} >= {"filters.png", "feature_maps.png", "confusion.png"}
    server, url = serve_in_thread(model)
    try:
        call = explorer_api(url)
        answer = call("/api/predict", {"sample": 0})
        assert len(answer["probabilities"]) == 10
        if probabilities:
            assert abs(sum(answer["probabilities"]) - 1) < 1e-4
        explained = call("/api/explain", {"input": answer["input"], "layer": 0, "row": 5, "col": 7, "channel": 2})
        assert explained["equal"], explained
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- hostile files
def small_graph(tamper=None, nodes=None):
    """A valid little ONNX CNN (Conv, Relu, MaxPool, Flatten, Gemm), optionally tampered with."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(np.zeros(4, np.float32), "b"),
               numpy_helper.from_array(rng.standard_normal((10, 4 * 13 * 13)).astype(np.float32), "fc")]
    graph_nodes = nodes or [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="dense", transB=1),
    ]
    graph = helper.make_graph(graph_nodes, "small", [helper.make_tensor_value_info("x", 1, ["n", 1, 28, 28])],
                              [helper.make_tensor_value_info("y", 1, ["n", 10])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    if tamper:
        tamper(model)
    return model


def write(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_the_small_graph_itself_loads_and_predicts_as_onnx_runtime(tmp_path):
    import onnxruntime

    path = write(tmp_path, small_graph())
    x, _ = digits(8)
    want = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(cnn.load_model(path).predict(x), want, rtol=1e-4, atol=1e-5)


def _external(model, location):
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = 1
    for key, value in (("location", location), ("offset", "0"), ("length", "144")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def _dims(dims):
    def tamper(model):
        del model.graph.initializer[0].dims[:]
        model.graph.initializer[0].dims.extend(dims)
    return tamper


@pytest.mark.parametrize("tamper,message", [
    (lambda m: _external(m, "/etc/passwd"), "keeps its data in an external file .*/etc/passwd.*refused"),
    (lambda m: _external(m, "../../secret.bin"), "keeps its data in an external file .*secret.bin"),
    (_dims([4, 1, 3, 4]), r"declares dims \[4, 1, 3, 4\] \(48 elements\) but holds 36"),
    (_dims([1 << 20, 1 << 12, 3, 3]), "more than 1,073,741,824"),  # 38 billion floats from a 20 KB file
    (_dims([-4, 1, 3, 3]), r"declares dims \[-4"),
    (lambda m: m.graph.node[1].input.__setitem__(0, "nowhere"), "reads 'nowhere', which no earlier node makes"),
    (lambda m: m.graph.node.reverse(), "which no earlier node makes \\(an undefined input, or a cycle\\)"),
    (lambda m: m.opset_import.append(onnx.helper.make_opsetid("com.evil", 1)), "domain 'com.evil'"),
    (lambda m: m.graph.node.append(onnx.helper.make_node(
        "If", ["y"], ["z"], name="branch", then_branch=onnx.helper.make_graph([], "t", [], []),
        else_branch=onnx.helper.make_graph([], "e", [], []))), "holds a sub-graph"),
    (lambda m: m.graph.node.extend(onnx.helper.make_node("Identity", ["y"], [f"i{k}"], name=f"i{k}")
                                   for k in range(10_001)), "10,006 nodes .* at most 10,000"),
])
def test_hostile_files_are_refused_before_any_tensor_is_decoded(tmp_path, monkeypatch, tamper, message):
    path = write(tmp_path, small_graph(tamper))
    decoded = []
    monkeypatch.setattr(onnx.numpy_helper, "to_array", lambda *a, **k: decoded.append(a) or 1 / 0)
    with pytest.raises(ModelFileError, match=message):
        cnn.load_model(path)
    assert not decoded


def test_a_truncated_file_an_empty_one_and_a_device_are_refused(tmp_path):
    good = small_graph().SerializeToString()
    for name, data in (("cut.onnx", good[: len(good) // 2]), ("empty.onnx", b""), ("text.onnx", b"hello world")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFileError, match="not an ONNX"):
            cnn.load_model(tmp_path / name)
    with pytest.raises(ModelFileError, match="regular file|not a regular"):
        cnn.onnx.load("/dev/zero")


def test_an_operator_the_engine_lacks_is_refused_with_its_node(tmp_path):
    model = small_graph(lambda m: m.graph.node[1].__setattr__("op_type", "Selu"))
    with pytest.raises(ModelFileError, match="node 'relu' \\(Selu\\): this operator is not in the engine"):
        cnn.load_model(write(tmp_path, model))
    padded = small_graph(lambda m: m.graph.node[2].attribute.append(onnx.helper.make_attribute("pads", [1, 1, 1, 1])))
    with pytest.raises(ModelFileError, match="node 'pool' \\(MaxPool\\): pads \\[1, 1, 1, 1\\] are not Keras's 'same'"):
        cnn.load_model(write(tmp_path, padded, "p.onnx"))


def test_fuzzed_onnx_files_get_the_engines_error_or_a_model(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from test_hostile import _mutate, _mutations, memory_cap

    good = small_graph().SerializeToString()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutations=_mutations())
    def fuzz(mutations):
        path = tmp_path / "f.onnx"
        path.write_bytes(_mutate(good, mutations))
        with memory_cap():
            try:
                cnn.onnx.load(path)
            except CNNError:
                pass

    fuzz()


@pytest.mark.parametrize("arch", ["chapter", "lenet5", "small_vgg", "resnet8"])
def test_the_engines_own_exports_come_back_as_engine_models(tmp_path, arch):
    """engine -> ONNX -> engine: NHWC between the Transposes the export puts around each convolution is read
    back as the engine's own order; BatchNormalization comes back as its folded per-channel scale and shift."""
    from cnn import architectures

    cnn.set_seed(2)
    model = getattr(architectures, arch)()
    x, y = digits(128)
    model.fit(x, np.eye(10)[y] if arch == "chapter" else y, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "m.onnx")
    back = cnn.load_model(tmp_path / "m.onnx")
    assert back.input_shape == model.input_shape and back.output_shape == model.output_shape
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-4, atol=1e-6)
    kinds = {type(layer).__name__ for layer in back.layers}
    assert "Conv2D" in kinds and "Dense" in kinds and not kinds & {"Permute", "Reshape"}


def test_every_layer_example_comes_back_equal_or_is_refused_by_name(tmp_path):
    """engine -> ONNX -> engine over the registry: the same predictions, or a ModelFileError naming the node
    (the normalization layers' primitive patterns, ReLU's Where, GELU's Erf, a graph that is the identity)."""
    from cnn.testing import example_input
    from test_registry import CASES, _model, _perturbed

    back_equal, refused = [], []
    for cls, example in CASES:
        cnn.set_seed(0)
        model, _ = _model(cls, example)
        _perturbed(model)
        x = example_input(example, dtype=np.float32)
        model.save(tmp_path / "m.onnx")
        try:
            back = cnn.load_model(tmp_path / "m.onnx")
        except ModelFileError as err:
            refused.append((cls.__name__, str(err)))
            continue
        np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-4, atol=1e-4 * example.reduction,
                                   err_msg=f"{cls.__name__} {example.label}")
        back_equal.append(cls.__name__)
    assert len(back_equal) >= 100, refused
    assert {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "BatchNormalization", "Resizing",
            "UpSampling2D", "Concatenate", "Add"} <= set(back_equal)
    assert all("node" in message or "the output is the input itself" in message for _, message in refused), refused

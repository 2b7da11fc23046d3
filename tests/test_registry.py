"""Every registered layer, by its declared examples (``cls.examples``): the
registry drives these tests, so a new layer class is checked the moment it is
defined, and a layer with no example fails here.

For each example: the backward pass against central differences in float64
(every algorithm the layer may pick), a gradient made 1% wrong is caught, the
forward pass and every gradient against the Keras layer made from the
engine's own Keras config (float32, the same weights), ``param_shapes``
(derived from the declared weights) equal to what a build makes, and the
layer saved and loaded in a model both ways: the engine's ``.npz`` and
``.keras``, and a ``.keras`` file Keras writes.
"""
import numpy as np
import pytest

import cnn
from cnn.gradcheck import GradientCheckError, check_layer
from cnn.keras_io import _keras_layer_config
from cnn.layers import BUILT_IN, Example
from cnn.testing import assert_layer_gradients, check_layer_against_keras, example_input

CASES = [(cls, example) for cls in BUILT_IN.values() for example in cls.examples]
IDS = [f"{cls.__name__}-{example.label or 'default'}" for cls, example in CASES]
# the cases Keras on TensorFlow's CPU can run (each other case names what checks it instead)
KERAS_CASES = [(cls, example) for cls, example in CASES if example.keras]
KERAS_IDS = [i for i, (_, example) in zip(IDS, CASES) if example.keras]


def _several(example):
    return isinstance(example.sample_shape[0], (tuple, list))


def test_every_registered_layer_declares_examples_and_is_exported():
    assert len(BUILT_IN) >= 23
    for name, cls in BUILT_IN.items():
        assert cls.examples, f"{name} declares no examples: nothing would check it"
        assert all(isinstance(e, Example) for e in cls.examples), name
        assert getattr(cnn.layers, name) is cls and name in cnn.layers.__all__, name
        assert cnn.layers.get_class(name) is cls, name
        labels = [e.label for e in cls.examples]
        assert len(set(labels)) == len(labels), f"{name}: two examples with one label"
    assert not hasattr(cnn.layers, "Pooling2D") and "KernelBiasLayer" not in BUILT_IN  # bases are not layers
    from cnn.missing import LAYERS as MISSING

    assert not set(MISSING) & set(BUILT_IN), "a layer the engine has is still listed as missing"


def test_a_class_defined_outside_the_engine_is_registered_only_when_asked():
    class RegistryProbe(cnn.layers.Layer):
        pass

    assert "RegistryProbe" not in cnn.layers.LAYERS
    cnn.layers.register(RegistryProbe)
    try:
        assert cnn.layers.get_class("RegistryProbe") is RegistryProbe and "RegistryProbe" not in BUILT_IN
    finally:
        del cnn.layers.LAYERS["RegistryProbe"]


def test_keras_arguments_are_refused_by_the_class_that_lacks_them():
    with pytest.raises(cnn.InputError, match="Conv2D: kernel_constraint='non_neg' is not supported"):
        cnn.layers.Conv2D(4, 3, kernel_constraint="non_neg")
    cnn.layers.Conv2D(4, 3, kernel_constraint=None, lora_rank=None)  # Keras's defaults pass
    with pytest.raises(cnn.InputError, match="Dense: unknown argument 'groups'"):
        cnn.layers.Dense(4, groups=1)  # a Keras Dense has no groups either
    with pytest.raises(cnn.InputError, match="Flatten: unknown argument 'kernel_constraint'"):
        cnn.layers.Flatten(kernel_constraint=None)


@pytest.mark.parametrize("cls,example", CASES, ids=IDS)
def test_backward_against_central_differences(cls, example):
    assert_layer_gradients(cls(**example.config), example_input(example), training=example.training)


@pytest.mark.parametrize("cls,example", CASES, ids=IDS)
def test_a_gradient_one_percent_wrong_is_caught(monkeypatch, cls, example):
    x = example_input(example)
    original = cls.backward
    for wrong in ("input", "weights"):
        layer = cls(**example.config)
        layer.build([a.shape[1:] for a in x] if _several(example) else x.shape[1:])
        if wrong == "weights" and not layer.trainable_names:
            continue

        def backward(self, dout, wrong=wrong):
            dx = original(self, dout)
            if wrong == "weights":
                for key in self.trainable_names:
                    self.grads[key] = self.grads[key] * 1.01
                return dx
            return [d * 1.01 for d in dx] if isinstance(dx, list) else dx * 1.01

        monkeypatch.setattr(cls, "backward", backward)
        with pytest.raises(GradientCheckError, match="entries outside"):
            check_layer(layer, x, training=example.training)
        monkeypatch.setattr(cls, "backward", original)


@pytest.mark.parametrize("cls,example", KERAS_CASES, ids=KERAS_IDS)
def test_against_the_keras_layer_made_from_the_engines_config(keras, cls, example):
    layer = cls(**example.config)
    theirs = keras.layers.deserialize(_keras_layer_config(layer))
    assert type(theirs).__name__ == cls.__name__
    training = example.training and not getattr(cls, "random_in_training", False)
    check_layer_against_keras(layer, theirs, example_input(example, dtype=np.float32), training=training,
                              reduction=example.reduction, fd=False)


@pytest.mark.parametrize("cls,example", CASES, ids=IDS)
def test_param_shapes_are_what_a_build_makes(cls, example):
    shape = [tuple(s) for s in example.sample_shape] if _several(example) else tuple(example.sample_shape)
    layer = cls(**example.config)
    predicted = layer.param_shapes(shape)
    assert not layer.built and not layer.params  # the layer itself is untouched
    layer.build(shape)
    assert predicted == {name: value.shape for name, value in layer.params.items()}


@pytest.mark.parametrize("example", cnn.layers.Conv2DTranspose.examples, ids=lambda e: e.label)
def test_a_transposed_convolution_is_the_adjoint_of_the_convolution_with_its_kernel(example, engine_float64):
    """<conv(y), x> = <y, conv_transpose(x)> for every y and x: the transposed
    layer is the adjoint of the Conv2D (checked against Keras) with the same
    kernel, strides, padding and dilation, over the transposed layer's output
    size. The dilated case, which TensorFlow's CPU kernels cannot run, is
    checked by this alone."""
    config = {k: v for k, v in example.config.items() if k not in ("output_padding", "activation", "impl")}
    config["use_bias"] = False
    transposed = cnn.layers.Conv2DTranspose(**config)
    x = example_input(example)
    out = transposed(x)
    kernel = transposed.get_weights()[0]  # (kh, kw, filters, cin): the convolution's (kh, kw, in, out)
    conv = cnn.layers.Conv2D(kernel.shape[3], kernel.shape[:2], strides=config.get("strides", 1),
                             padding=config.get("padding", "valid"), dilation_rate=config.get("dilation_rate", 1),
                             use_bias=False)
    conv.build(out.shape[1:])
    conv.set_weights([kernel])
    y = np.random.default_rng(3).standard_normal(out.shape)
    cy = conv(y)
    assert cy.shape == x.shape
    np.testing.assert_allclose(np.sum(cy * x), np.sum(y * out), rtol=1e-12)


def _model(cls, example):
    shapes = example.sample_shape
    if _several(example):
        inputs = [cnn.Input(tuple(s)) for s in shapes]
        return cnn.Model(inputs, cls(**example.config)(inputs)), inputs
    return cnn.Sequential([cnn.Input(tuple(shapes)), cls(**example.config)]), None


def _perturbed(model, seed=5):
    """Weights unlike their initial values (BatchNorm's moving statistics too),
    so that a loader that kept its own would be caught."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.uniform(0.1, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])


@pytest.mark.parametrize("cls,example", CASES, ids=IDS)
def test_saved_and_loaded_both_ways(keras, tmp_path, cls, example):
    cnn.set_seed(0)
    model, _ = _model(cls, example)
    _perturbed(model)
    x = example_input(example, dtype=np.float32)
    want = model.predict(x, verbose=0)
    for suffix in ("npz", "keras"):
        model.save(tmp_path / f"m.{suffix}")
        loaded = cnn.models.load_model(tmp_path / f"m.{suffix}")
        assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
        assert loaded.layers[-1].get_config() == model.layers[-1].get_config(), suffix
        if "impl" in example.config:  # the algorithm is a choice of this run, saved nowhere
            loaded.layers[-1].impl = example.config["impl"]
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), want, err_msg=suffix)
    if not example.keras:
        return
    # the engine's .keras file in Keras, and a file Keras writes back into the engine
    theirs = keras.saving.load_model(tmp_path / "m.keras")
    if getattr(cls, "keras_inference_differs", None):  # a Keras bug the engine names and does not copy
        np.testing.assert_array_equal(theirs.predict(x, verbose=0), x)  # fails once Keras fixes it: look again
    else:
        np.testing.assert_allclose(theirs.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5 * example.reduction)
    theirs.save(tmp_path / "keras-written.keras")
    back = cnn.models.load_model(tmp_path / "keras-written.keras")
    if "impl" in example.config:
        back.layers[-1].impl = example.config["impl"]
    assert back.layers[-1].get_config() == {**model.layers[-1].get_config(), "name": theirs.layers[-1].name}
    np.testing.assert_array_equal(back.predict(x, verbose=0), want)

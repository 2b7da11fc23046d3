"""The explorer's backward pass: gradient maps, a weight's gradient and an
input gradient as sums, a dense unit's logit and softmax, one optimizer
step with its rule; every number equal to the engine's own
(compute_gradients, train_on_batch) and, where the arithmetic has no ties,
to Keras's tape; then the same clicks on the page in headless Chromium, on
the chapter's model, LeNet-5 and a BatchNorm net."""
import copy
import json
import re

import numpy as np
import pytest

import cnn
from cnn import architectures
from cnn.explorer.server import serve_in_thread
from test_explorer import browser, call, settle, wait_for  # noqa: F401 - the browser fixture is used by name

ARCHS = ["chapter", "lenet5", "small_vgg"]


def trained(arch):
    cnn.set_seed(3)
    model = getattr(architectures, arch)()
    (x, y), _ = cnn.datasets.mnist.load_data()
    x = x[:256, :, :, None].astype(np.float32) / 255
    model.fit(x, np.eye(10)[y[:256]] if arch == "chapter" else y[:256], epochs=1, batch_size=64, verbose=0)
    return model


def targets(model, label):
    from cnn.explorer.backward import targets as make

    return make(model, label, 10)


@pytest.fixture()
def served(request):
    model = trained(request.param)
    server, url = serve_in_thread(model)
    yield server, url, model
    server.shutdown()
    server.server_close()


def post(url, path, body):
    status, answer = call(url, path, body)
    assert status == 200, answer
    return answer


@pytest.mark.parametrize("served", ARCHS + ["resnet8"], indirect=True)  # resnet8: a graph, projection shortcuts
def test_every_gradient_explained_is_the_engines(served):
    server, url, model = served
    image = post(url, "/api/predict", {"sample": 1})["input"]
    x = (np.array(image) / 255).reshape(1, 28, 28, 1).astype(np.float32)
    label = 3
    loss, grads = copy.deepcopy(model).compute_gradients(x, targets(model, label), training=False)
    answer = post(url, "/api/backward", {"input": image, "label": label})
    assert answer["loss"] == pytest.approx(loss, rel=1e-6)
    assert answer["layers"] and all(np.abs(layer["grads"]).max() <= layer["limit"] + 1e-7 for layer in answer["layers"])
    rng = np.random.default_rng(0)
    convs = [i for i, layer in enumerate(model.layers) if type(layer).__name__ == "Conv2D"]
    for index in convs:
        kernel = model.layers[index].params["kernel"]
        for _ in range(3):
            position = [int(rng.integers(n)) for n in kernel.shape]
            e = post(url, "/api/gradient", {"input": image, "label": label, "layer": index, "weight": "kernel",
                                            "index": position})
            want = float(grads[(model.layers[index].name, "kernel")][tuple(position)])
            assert e["equal"] and e["engine"] == pytest.approx(want, rel=1e-5, abs=1e-9), e
            assert e["count"] == model.layers[index].output_shape[0] * model.layers[index].output_shape[1]
        if model.layers[index].use_bias:
            e = post(url, "/api/gradient", {"input": image, "label": label, "layer": index, "weight": "bias",
                                            "index": [1]})
            assert e["equal"] and e["engine"] == pytest.approx(float(grads[(model.layers[index].name, "bias")][1]),
                                                               rel=1e-5, abs=1e-9)
        h, w, c = model.layers[index].input_shape
        e = post(url, "/api/input_gradient", {"input": image, "label": label, "layer": index, "row": h // 2,
                                              "col": w // 2, "channel": c - 1})
        assert e["equal"], e
    for index in (i for i, layer in enumerate(model.layers) if type(layer).__name__ == "BatchNormalization"):
        for weight in model.layers[index].trainable_names:  # gamma and beta, in inference mode
            e = post(url, "/api/gradient", {"input": image, "label": label, "layer": index, "weight": weight,
                                            "index": [2]})
            want = float(grads[(model.layers[index].name, weight)][2])
            assert e["equal"] and e["engine"] == pytest.approx(want, rel=1e-5, abs=1e-9), e
    last = max(i for i, layer in enumerate(model.layers) if type(layer).__name__ == "Dense")
    e = post(url, "/api/gradient", {"input": image, "label": label, "layer": last, "weight": "kernel",
                                    "index": [5, label]})
    assert e["equal"] and e["count"] == 1
    assert e["engine"] == pytest.approx(float(grads[(model.layers[last].name, "kernel")][5, label]), abs=1e-9)
    e = post(url, "/api/dense", {"input": image, "layer": last, "unit": label})
    assert e["equal"] and e["softmax"]["value"] == pytest.approx(float(model.predict(x)[0, label]), rel=1e-5)
    pools = [i for i, layer in enumerate(model.layers) if type(layer).__name__ == "MaxPooling2D"]
    for index in pools:
        h, w, c = model.layers[index].input_shape
        e = post(url, "/api/input_gradient", {"input": image, "label": label, "layer": index, "row": 5, "col": 6,
                                              "channel": 0})
        assert e["equal"] and all(t["product"] in (0.0, t["grad"]) for t in e["terms"]), e


def test_the_gradients_are_kerass_where_nothing_ties():
    """LeNet-5 (tanh, average pooling: no ReLU zeros tying in a max-pool window) against Keras's tape."""
    import keras
    import tensorflow as tf

    model = trained("lenet5")
    server, url = serve_in_thread(model)
    try:
        image = post(url, "/api/predict", {"sample": 2})["input"]
        answer = post(url, "/api/backward", {"input": image, "label": 4})
        e = post(url, "/api/gradient", {"input": image, "label": 4, "layer": 2, "weight": "kernel",
                                        "index": [1, 3, 5, 7]})
    finally:
        server.shutdown()
        server.server_close()
    theirs = architectures.lenet5(api=keras)
    theirs.set_weights(model.get_weights())
    x = tf.constant((np.array(image) / 255).reshape(1, 28, 28, 1).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(tf.constant([4]), theirs(x, training=False))[0]
    dx, dw = tape.gradient(loss, [x, theirs.layers[2].kernel])  # the second convolution, as the engine's layer 2
    assert answer["loss"] == pytest.approx(float(loss), rel=1e-5)
    np.testing.assert_allclose(answer["input_gradient"][0], dx.numpy()[0, :, :, 0], atol=2e-6 * np.abs(dx).max() + 1e-7)
    assert e["sum"] == pytest.approx(float(dw.numpy()[1, 3, 5, 7]), rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("served", ARCHS, indirect=True)
def test_one_step_is_train_on_batch_and_its_rule(served):
    server, url, model = served
    image = post(url, "/api/predict", {"sample": 0})["input"]
    x = (np.array(image) / 255).reshape(1, 28, 28, 1).astype(np.float32)
    before = copy.deepcopy(server.explorer.model)
    before.optimizer._bind(before)
    e = post(url, "/api/step", {"input": image, "label": 7, "layer": 0, "weight": "kernel", "index": [1, 1, 0, 2]})
    before.train_on_batch(x, targets(before, 7))
    for got, want in zip(server.explorer.model.get_weights(), before.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert e["equal"] and e["rule"] and e["after"] == float(before.layers[0].params["kernel"][1, 1, 0, 2])
    assert e["optimizer"] == type(model.optimizer).__name__ and e["loss_after"] < e["loss_before"]


def test_bad_backward_requests_are_named(tmp_path):
    model = trained("chapter")
    server, url = serve_in_thread(model)
    try:
        image = post(url, "/api/predict", {"sample": 0})["input"]
        for path, body, message in (
                ("/api/backward", {"input": image, "label": 10}, "'label' must be a whole number from 0 to 9"),
                ("/api/gradient", {"input": image, "label": 1, "layer": 0, "weight": "kernel", "index": [9, 0, 0, 0]},
                 "outside it"),
                ("/api/gradient", {"input": image, "label": 1, "layer": 2, "weight": "kernel", "index": [0]},
                 "no trainable weight 'kernel'"),
                ("/api/input_gradient", {"input": image, "label": 1, "layer": 5, "row": 0, "col": 0, "channel": 0},
                 "choose a Conv2D or MaxPooling2D"),
                ("/api/step", {"input": image, "label": 1, "layer": 0, "weight": "gamma", "index": [0]},
                 "one of \\['kernel', 'bias'\\]"),
                ("/api/dense", {"input": image, "layer": 0, "unit": 0}, "is not a Dense layer")):
            status, answer = call(url, path, body)
            assert status == 400, (path, answer)
            assert re.search(message, answer["error"]), (path, answer["error"])
        uncompiled = cnn.Sequential([cnn.Input((28, 28, 1)), cnn.layers.Flatten(),
                                     cnn.layers.Dense(10, activation="softmax")])
        server.explorer.model = uncompiled
        status, answer = call(url, "/api/backward", {"input": image, "label": 1})
        assert status == 400 and "no loss" in answer["error"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("served", ARCHS, indirect=True)
def test_the_page_explains_a_weights_gradient_an_input_gradient_and_a_step(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, url, model = served
    browser.get(url + "/")
    wait_for(browser, "return document.body.dataset.ready === 'yes'")
    Select(browser.find_element(By.ID, "samples")).select_by_value("4")
    settle(browser)
    label = int(browser.find_element(By.ID, "b-label").get_attribute("value"))
    assert label == int(call(url, "/api/samples")[1]["labels"][4])  # the test image's own label by default
    browser.find_element(By.ID, "b-run").click()
    wait_for(browser, "return document.body.dataset.backwards >= 1")
    assert "loss" in browser.find_element(By.ID, "b-loss").text
    image = call(url, "/api/samples/4")[1]["pixels"]
    x = (np.array(image) / 255).reshape(1, 28, 28, 1).astype(np.float32)
    _, grads = copy.deepcopy(server.explorer.model).compute_gradients(x, targets(model, label), training=False)
    # a weight of the first convolution's filter 0
    browser.execute_script("document.querySelector('#b-kernel td.weight').click()")
    wait_for(browser, "return document.getElementById('b-panel').dataset.kind === 'weight_gradient'")
    panel = browser.find_element(By.ID, "b-panel")
    position = tuple(json.loads(panel.get_attribute("data-position")))
    assert float(panel.get_attribute("data-engine")) == pytest.approx(
        float(grads[(model.layers[0].name, "kernel")][position]), rel=1e-5, abs=1e-9)
    assert panel.get_attribute("data-equal") == "true" and "the same number" in panel.text
    browser.save_screenshot(str(tmp_path / "weight_gradient.png"))
    # a cell of the input's gradient map: col2im through the first convolution
    canvas = browser.find_element(By.CSS_SELECTOR, 'canvas.gradmap[data-layer="-1"]')
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(canvas).click().perform()
    wait_for(browser, "return document.getElementById('b-panel').dataset.kind === 'input_gradient'")
    assert browser.find_element(By.ID, "b-panel").get_attribute("data-equal") == "true"
    # a class probability: its logit and the softmax
    browser.execute_script(f"document.querySelector('.bar[data-unit=\"{label}\"]').click()")
    wait_for(browser, "return document.getElementById('b-panel').dataset.kind === 'dense'")
    assert "softmax" in browser.find_element(By.ID, "b-panel").text
    # one optimizer step on the weight clicked first: the weights train_on_batch gives
    browser.execute_script("document.querySelector('#b-kernel td.weight').click()")
    wait_for(browser, "return document.getElementById('b-panel').dataset.kind === 'weight_gradient'")
    stepped = copy.deepcopy(server.explorer.model)
    stepped.optimizer._bind(stepped)
    stepped.train_on_batch(x, targets(model, label))
    browser.find_element(By.ID, "b-step").click()
    wait_for(browser, "return document.body.dataset.steps >= 1 && document.getElementById('b-panel').dataset.kind"
                      " === 'step'")
    panel = browser.find_element(By.ID, "b-panel")
    assert panel.get_attribute("data-equal") == "true" and "the same number" in panel.text
    for got, want in zip(server.explorer.model.get_weights(), stepped.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert float(panel.get_attribute("data-after")) == pytest.approx(
        float(stepped.layers[0].params["kernel"][position]), abs=1e-6)


def colour_model():
    cnn.set_seed(5)
    model = cnn.Sequential([cnn.Input((32, 32, 3)), cnn.layers.Conv2D(4, 3, activation="relu", name="conv"),
                            cnn.layers.MaxPooling2D(), cnn.layers.Flatten(),
                            cnn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_colour_model_takes_photos_of_its_own_size_and_explains_them():
    from cnn.errors import InputError

    model = colour_model()
    server, url = serve_in_thread(model)
    try:
        digit = post(url, "/api/predict", {"sample": 0})
        assert np.array(digit["input"]).shape == (32, 32, 3)
        assert "resized to 32x32, the model's input" in digit["notes"] and "gray repeated on 3 channels" in digit["notes"]
        rng = np.random.default_rng(0)
        photo = rng.integers(0, 256, (40, 50, 3))
        photo[:, :, 0] = 255  # a red cast: the channels must stay apart
        answer = post(url, "/api/predict", {"image": {"width": 50, "height": 40, "channels": 3,
                                                      "pixels": photo.ravel().tolist()}})
        seen = np.array(answer["input"])
        assert seen.shape == (32, 32, 3) and (seen[:, :, 0] == 255).all() and seen[:, :, 1].std() > 10
        x = seen.reshape(1, 32, 32, 3).astype(np.float32) / 255
        np.testing.assert_allclose(answer["probabilities"], model.predict(x)[0], atol=1e-6)
        e = post(url, "/api/explain", {"input": answer["input"], "layer": 0, "row": 4, "col": 9, "channel": 2})
        assert e["equal"] and np.array(e["window"]).shape == (3, 3, 3)  # the three colour channels of the window
        b = post(url, "/api/backward", {"input": answer["input"], "label": 2})
        assert np.array(b["input_gradient"]).shape == (3, 32, 32)
        _, grads = copy.deepcopy(model).compute_gradients(x, np.array([2]), training=False)
        g = post(url, "/api/gradient", {"input": answer["input"], "label": 2, "layer": 0, "weight": "kernel",
                                        "index": [2, 1, 2, 3]})
        assert g["equal"] and g["engine"] == pytest.approx(float(grads[("conv", "kernel")][2, 1, 2, 3]), abs=1e-9)
        status, refused = call(url, "/api/explain", {"input": digit["input"][0], "layer": 0, "row": 0, "col": 0,
                                                     "channel": 0})
        assert status == 400 and "32x32x3" in refused["error"]
    finally:
        server.shutdown()
        server.server_close()
    rows = cnn.Sequential([cnn.Input((6,)), cnn.layers.Dense(2)])
    with pytest.raises(InputError, match="one image input, \\(height, width, 1 or 3 channels\\)"):
        serve_in_thread(rows)


def test_the_page_takes_a_photo_for_a_colour_model(browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    photo = np.zeros((60, 80, 3), np.uint8)
    photo[:, :40] = (255, 40, 0)
    photo[:, 40:] = (0, 90, 255)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    model = colour_model()
    server, url = serve_in_thread(model)
    try:
        browser.get(url + "/")
        wait_for(browser, "return document.body.dataset.ready === 'yes'")
        browser.find_element(By.ID, "photo").send_keys(str(tmp_path / "photo.png"))
        settle(browser)
        seen = browser.find_element(By.ID, "seen")
        assert int(seen.get_attribute("width")) == 32 * 5  # the model's 32x32, drawn 5 pixels a cell
        left = browser.execute_script("return Array.from(document.getElementById('seen').getContext('2d')"
                                      ".getImageData(10, 80, 1, 1).data)")
        assert left[0] > 200 and left[2] < 60  # the red half shown red: the colours reached the model
        canvas = browser.find_elements(By.CSS_SELECTOR, 'canvas.map[data-layer="0"]')[1]
        ActionChains(browser).move_to_element(canvas).click().perform()
        wait_for(browser, "return document.getElementById('panel').dataset.cell")
        assert "the same number" in browser.find_element(By.ID, "panel").text
        browser.find_element(By.ID, "b-run").click()
        wait_for(browser, "return document.body.dataset.backwards >= 1")
        assert len(browser.find_elements(By.CSS_SELECTOR, 'canvas.gradmap[data-layer="-1"]')) == 3
    finally:
        server.shutdown()
        server.server_close()

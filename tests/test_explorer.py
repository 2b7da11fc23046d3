"""`cnn explore`: its JSON API (every number the engine's, every bad request a
4xx answer and the server still serving), and the page itself in a real
headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
a stroke drawn on the canvas gets a prediction, a clicked convolution cell's
panel holds the engine's value, a one-epoch training run grows the curve."""
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn.architectures import small
from cnn.explorer.server import serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def server():
    cnn.set_seed(0)
    model = small()
    model.build((28, 28, 1))
    srv, url = serve_in_thread(model)
    yield srv, url
    srv.shutdown()
    srv.server_close()


def call(url, path, body=None, raw=None, headers=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def engine_outputs(model, image):
    act = (np.asarray(image, np.float32) / 255).reshape(1, 28, 28, 1)
    outputs = []
    for layer in model.layers:
        act = layer.forward(act, training=False)
        outputs.append(act)
    return outputs


# ---------------------------------------------------------------- the API
def test_it_listens_on_the_loopback_address_only(server):
    srv, url = server
    assert srv.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")


def test_predict_a_test_image_and_a_drawing(server):
    srv, url = server
    status, result = call(url, "/api/predict", {"sample": 3})
    assert status == 200 and len(result["probabilities"]) == 10
    assert abs(sum(result["probabilities"]) - 1) < 1e-4
    assert [l["name"] for l in result["layers"]] == ["conv2d", "max_pooling2d", "dropout"]
    canvas = np.full((100, 120), 255)
    canvas[20:80, 55:65] = 0  # a dark "1" on white
    status, drawn = call(url, "/api/predict", {"image": {"width": 120, "height": 100, "pixels": canvas.ravel().tolist()}})
    assert status == 200 and any("inverted" in n for n in drawn["notes"])
    assert np.array(drawn["input"]).shape == (28, 28) and np.array(drawn["input"]).max() > 200


def test_every_explained_cell_is_the_engines_number(server):
    srv, url = server
    model = srv.explorer.model
    _, result = call(url, "/api/predict", {"sample": 5})
    outputs = engine_outputs(model, result["input"])
    rng = np.random.default_rng(0)
    for index in (0, 1):  # the convolution and the max-pool
        oh, ow, c = model.layers[index].output_shape
        for _ in range(5):
            row, col, channel = int(rng.integers(oh)), int(rng.integers(ow)), int(rng.integers(c))
            status, e = call(url, "/api/explain", {"input": result["input"], "layer": index, "row": row, "col": col,
                                                   "channel": channel})
            assert status == 200 and e["equal"], e
            assert e["engine"] == pytest.approx(float(outputs[index][0, row, col, channel]), abs=1e-6)
            if e["kind"] == "conv":
                assert e["sum"] == pytest.approx(np.sum(e["products"]), abs=1e-5)
                assert e["value"] == pytest.approx(max(e["sum"] + e["bias"], 0), abs=1e-5)  # ReLU


def test_geometry_is_kerass_rule(server):
    _, url = server
    _, g = call(url, "/api/geometry", {"size": 7, "kernel": 3, "stride": 2, "dilation": 1, "padding": "same"})
    assert (g["output"], g["pad_before"], g["pad_after"]) == (4, 1, 1)
    _, g = call(url, "/api/geometry", {"size": 6, "kernel": 3, "stride": 2, "dilation": 1, "padding": "same"})
    assert (g["output"], g["pad_before"], g["pad_after"]) == (3, 0, 1)  # the odd one at the end
    _, g = call(url, "/api/geometry", {"size": 9, "kernel": 3, "stride": 1, "dilation": 2, "padding": "valid"})
    assert g["output"] == 5 and g["windows"][0] == [0, 2, 4]


@pytest.mark.parametrize("path,body,status,message", [
    ("/api/predict", {"image": {"width": 10, "height": 10, "pixels": [0] * 99}}, 400, "100 gray values"),
    ("/api/predict", {"image": {"width": 5000, "height": 1, "pixels": []}}, 400, "'width' must be"),
    ("/api/predict", {"image": {"width": 2, "height": 1, "pixels": [0, "x"]}}, 400, "numbers from 0 to 255"),
    ("/api/predict", {"image": {"width": 2, "height": 1, "pixels": [0, 300]}}, 400, "from 0 to 255"),
    ("/api/predict", {"sample": 999}, 400, "'sample' must be"),
    ("/api/predict", {}, 400, "give 'image'"),
    ("/api/explain", {"input": [[0] * 28] * 28, "layer": 99, "row": 0, "col": 0, "channel": 0}, 400, "'layer'"),
    ("/api/explain", {"input": [[0] * 28] * 28, "layer": 3, "row": 0, "col": 0, "channel": 0}, 400, "no windows"),
    ("/api/explain", {"input": [[0] * 28] * 28, "layer": 0, "row": 28, "col": 0, "channel": 0}, 400, "'row'"),
    ("/api/explain", {"input": [[0] * 27] * 28, "layer": 0, "row": 0, "col": 0, "channel": 0}, 400, "28x28"),
    ("/api/geometry", {"size": 2, "kernel": 3, "stride": 1, "dilation": 1, "padding": "valid"}, 400, "smaller"),
    ("/api/nothing", {}, 404, "no API call"),
    ("/api/train/stop", {}, 409, "no training run"),
])
def test_bad_requests_get_a_4xx_with_a_message(server, path, body, status, message):
    _, url = server
    got, answer = call(url, path, body)
    assert got == status and message in answer["error"], answer
    assert call(url, "/api/model")[0] == 200  # and it keeps serving


def test_malformed_and_oversized_bodies(server):
    _, url = server
    assert call(url, "/api/predict", raw=b"{not json")[0] == 400
    assert call(url, "/api/predict", raw=b'{"sample": NaN}')[0] == 400
    assert call(url, "/api/predict", raw=b"[1, 2]")[0] == 400
    host, port = server[0].server_address
    with socket.create_connection((host, port), timeout=10) as s:  # a huge Content-Length is refused unread
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        assert b"413" in s.recv(200)
    assert call(url, "/api/model")[0] == 200


def test_a_slow_client_stalls_nobody(server):
    _, url = server
    host, port = server[0].server_address
    with socket.create_connection((host, port), timeout=10) as slow:
        slow.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # and then nothing
        started = time.monotonic()
        assert call(url, "/api/predict", {"sample": 1})[0] == 200
        assert time.monotonic() - started < 10  # served at once, not after the slow one's timeout


def test_training_from_the_api(server):
    srv, url = server
    status, started = call(url, "/api/train", {"arch": "small", "epochs": 2, "n_train": 200})
    assert status == 200 and started["started"]
    assert call(url, "/api/train", {"arch": "small"})[0] == 409  # one run at a time
    for _ in range(300):
        status, progress = call(url, "/api/train")
        if not progress["running"]:
            break
        time.sleep(0.1)
    assert progress["error"] is None and progress["epoch"] == 2 and len(progress["history"]["loss"]) == 2
    assert len(progress["filters"]["filters"]) == 8


# ---------------------------------------------------------------- the page, in a real browser
@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1600"):
        options.add_argument(flag)
    options.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def wait_for(driver, script, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def test_the_page_draws_predicts_explains_and_trains(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    srv, url = server
    browser.get(url + "/")
    wait_for(browser, "return document.body.dataset.ready === 'yes'")
    pad = browser.find_element(By.ID, "pad")
    chain = ActionChains(browser).move_to_element_with_offset(pad, -60, -90).click_and_hold()
    for dx, dy in [(40, 0), (60, 0), (-20, 60), (-20, 60), (-20, 60)]:  # a "7"
        chain = chain.move_by_offset(dx, dy)
    chain.release().perform()
    wait_for(browser, "return window.explorer.predictions > 0 && window.explorer.inflight === 0")
    settled = -1
    while settled != browser.execute_script("return window.explorer.predictions"):  # no more on the way
        settled = browser.execute_script("return window.explorer.predictions")
        time.sleep(0.5)
    assert "probability" in browser.find_element(By.ID, "prediction").text
    # click a cell of the convolution's channel 2, near its middle (the maps are redrawn after each
    # prediction: find the canvas again if it was replaced meanwhile)
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(5):
        try:
            canvas = browser.find_elements(By.CSS_SELECTOR, 'canvas.map[data-layer="0"]')[2]
            ActionChains(browser).move_to_element_with_offset(canvas, 2, 2).click().perform()
            break
        except StaleElementReferenceException:
            time.sleep(0.2)
    explained = wait_for(browser, "return window.explorer.explain")
    image = explained["input"]  # the input that cell was explained for
    row, col, channel = explained["cell"]
    expected = float(engine_outputs(srv.explorer.model, image)[0][0, row, col, channel])
    shown = float(browser.find_element(By.ID, "panel-engine").text)
    value = float(browser.find_element(By.ID, "panel-value").text)
    assert shown == pytest.approx(expected, abs=1e-3) and value == pytest.approx(expected, abs=1e-3)
    assert "the same number" in browser.find_element(By.ID, "panel").text
    browser.save_screenshot(str(tmp_path / "explorer.png"))
    # train one epoch from the page: the curve grows
    browser.execute_script("document.getElementById('t-arch').value = 'small';"
                           "document.getElementById('t-epochs').value = 1;"
                           "document.getElementById('t-n').value = 200;")
    browser.find_element(By.ID, "t-start").click()
    wait_for(browser, "return window.explorer.history.loss && window.explorer.history.loss.length === 1"
                      " && !window.explorer.training.running", seconds=120)
    assert "done: 1 of 1 epochs" in browser.find_element(By.ID, "t-status").text
    browser.save_screenshot(str(tmp_path / "explorer_trained.png"))
    assert (tmp_path / "explorer.png").stat().st_size > 10_000


def test_cnn_explore_serves_a_kept_model_and_says_where(tmp_path):
    import subprocess
    import sys

    cnn.set_seed(1)
    kept = tmp_path / "kept.npz"
    model = small()
    model.build((28, 28, 1))
    model.save(kept)
    child = subprocess.Popen([sys.executable, "-m", "cnn", "explore", "--cache", str(kept)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [child.stdout.readline() for _ in range(2)]
        served = next(line for line in lines if "serving on" in line)
        url = served.split("serving on ", 1)[1].split()[0].rstrip("/")
        assert url.startswith("http://127.0.0.1:")
        status, described = call(url, "/api/model")
        assert status == 200 and described["layers"][0]["type"] == "Conv2D"
        with urllib.request.urlopen(url + "/", timeout=10) as page:
            assert b"Watch convolution happen" in page.read()
    finally:
        child.terminate()
        child.wait(timeout=30)

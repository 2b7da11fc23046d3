"""`cnn explore`: its JSON API (every number the engine's, every bad request a
4xx answer and the server still serving), and the page itself in a real
headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
a stroke drawn on the canvas gets a prediction, a clicked convolution cell's
panel holds the engine's value, a one-epoch training run grows the curve.
And closed to other pages: a foreign Host, a cross-origin or non-JSON POST
refused; a layer name made of HTML shown as text; requests racing a training
run's swap of the model answered from one model; a loopback load test."""
import json
import os
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


def _serve(model=None):
    if model is None:
        cnn.set_seed(0)
        model = small()
        model.build((28, 28, 1))
    return serve_in_thread(model)


@pytest.fixture(scope="module")
def server():
    """The server most tests share; no test here swaps its model (training has its own)."""
    srv, url = _serve()
    yield srv, url
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def own_server():
    """A server of one test's own, for the tests that train (and so swap the model)."""
    srv, url = _serve()
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
        s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                  "Content-Length: 999999999\r\n\r\n".encode())
        assert b"413" in s.recv(200)
    assert call(url, "/api/model")[0] == 200


def test_a_slow_client_stalls_nobody(server):
    _, url = server
    host, port = server[0].server_address
    with socket.create_connection((host, port), timeout=10) as slow:
        slow.sendall(f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())  # and then nothing
        started = time.monotonic()
        assert call(url, "/api/predict", {"sample": 1})[0] == 200
        assert time.monotonic() - started < 10  # served at once, not after the slow one's timeout


def test_training_from_the_api(own_server):
    srv, url = own_server
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


def settle(browser):
    """Wait until a prediction came back and no more are on the way."""
    wait_for(browser, "return document.body.dataset.predictions > 0 && document.body.dataset.inflight === '0'")
    settled = -1
    while settled != browser.execute_script("return document.body.dataset.predictions"):
        settled = browser.execute_script("return document.body.dataset.predictions")
        time.sleep(0.5)


def test_the_page_draws_predicts_explains_and_trains(own_server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    srv, url = own_server
    browser.get(url + "/")
    wait_for(browser, "return document.body.dataset.ready === 'yes'")
    pad = browser.find_element(By.ID, "pad")
    chain = ActionChains(browser).move_to_element_with_offset(pad, -60, -90).click_and_hold()
    for dx, dy in [(40, 0), (60, 0), (-20, 60), (-20, 60), (-20, 60)]:  # a "7"
        chain = chain.move_by_offset(dx, dy)
    chain.release().perform()
    settle(browser)
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
    wait_for(browser, "return document.getElementById('panel').dataset.cell")
    panel = browser.find_element(By.ID, "panel")
    image = json.loads(panel.get_attribute("data-input"))  # the input that cell was explained for
    row, col, channel = json.loads(panel.get_attribute("data-cell"))
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
    wait_for(browser, "const s = document.getElementById('t-status').dataset;"
                      " return s.losses === '1' && s.running === 'false'", seconds=120)
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


# ---------------------------------------------------------------- closed to other pages
def raw_request(srv, request):
    """Send ``request`` (bytes) as it is; the status code and the JSON answer."""
    host, port = srv.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_foreign_host_is_refused_before_anything_else(server):
    """A DNS-rebinding page comes in under its own name: it reads nothing, not even the page."""
    srv, url = server
    host, port = srv.server_address[:2]
    for path in (b"/", b"/api/model", b"/api/samples/0", b"/app.js"):
        status, answer = raw_request(srv, b"GET " + path + f" HTTP/1.1\r\nHost: rebind.example:{port}\r\n\r\n".encode())
        assert status == 403 and "does not name this server" in answer["error"], (path, answer)
    status, answer = raw_request(srv, f"GET /api/model HTTP/1.1\r\nHost: {host}:{port + 1}\r\n\r\n".encode())
    assert status == 403  # the right address, another port
    status, answer = raw_request(srv, b"GET /api/model HTTP/1.0\r\n\r\n")
    assert status == 403 and "None" in answer["error"]  # no Host at all
    for name in (f"{host}:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, _ = raw_request(srv, f"GET /api/model HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
        assert status == 200, name


def test_a_cross_origin_or_non_json_post_is_refused_and_changes_nothing(own_server):
    srv, url = own_server
    body = json.dumps({"arch": "small", "epochs": 1, "n_train": 100}).encode()
    for headers, message in [({"Origin": "http://evil.example"}, "another page"),
                             ({"Origin": "null"}, "another page"),
                             ({"Origin": url.replace("127.0.0.1", "localhost.evil.example")}, "another page"),
                             ({"Sec-Fetch-Site": "cross-site"}, "cross-site request"),
                             ({"Sec-Fetch-Site": "same-site"}, "same-site request"),
                             ({"Content-Type": "text/plain"}, "must be application/json"),
                             ({"Content-Type": "application/x-www-form-urlencoded"}, "must be application/json")]:
        status, answer = call(url, "/api/train", raw=body, headers=headers)
        assert status == 403 and message in answer["error"], (headers, answer)
    assert call(url, "/api/train")[1]["running"] is False  # nothing was started
    status, answer = call(url, "/api/predict", raw=b'{"sample": 1}', headers={"Content-Type": ""})
    assert status == 403
    # the page's own requests, as Chromium sends them, pass
    same = {"Origin": url, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json; charset=utf-8"}
    assert call(url, "/api/predict", {"sample": 1}, headers=same)[0] == 200


def test_the_page_is_served_with_a_policy_that_forbids_inline_script(server):
    _, url = server
    with urllib.request.urlopen(url + "/", timeout=10) as page:
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["X-Frame-Options"] == "DENY"
    source = (ROOT / "cnn" / "explorer" / "static" / "app.js").read_text()
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "window.explorer" not in source


def test_the_largest_drawing_the_api_takes_fits_in_the_body_limit(server):
    _, url = server
    white = {"image": {"width": 1024, "height": 1024, "pixels": [255] * (1024 * 1024)}}
    raw = json.dumps(white, separators=(",", ":")).encode()
    assert len(raw) > 4 << 20  # over the old limit
    status, answer = call(url, "/api/predict", raw=raw)
    assert status == 400 and "the picture is empty" in answer["error"]  # read whole (not 413), and said empty


INJECTED = '<img src=x onerror="document.body.dataset.pwned=1"><b>bold'  # Keras takes it: no '/'


def test_layer_names_are_checked_when_loading(tmp_path):
    from cnn.layers import Conv2D, Dense, Flatten
    from cnn.errors import InputError, ModelFileError

    for bad, message in [("a/b", "cannot contain '/'"), ("a\nb", "printable"), ("x" * 300, "at most 256"),
                         ("", "non-empty")]:
        with pytest.raises(InputError, match=message):
            Conv2D(2, 3, name=bad)
    # a file that names a layer so is refused when loaded, whatever wrote it
    model = cnn.Sequential([Conv2D(2, 3, input_shape=(8, 8, 1), name="conv"), Flatten(), Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.save(tmp_path / "m.npz")
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        members = {n: z.read(n) for n in z.namelist()}
    key = next(n for n in members if n.startswith("config"))
    assert members[key].count(b'"conv"') == 1
    members[key] = members[key].replace(b'"conv"', b'"c\\tv"')  # as long: the array's header still fits
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises((ModelFileError, InputError), match="printable"):
        cnn.load_model(tmp_path / "bad.npz")


def test_an_html_layer_name_is_shown_as_text(browser, tmp_path):
    """A model file shared with a learner, one of whose layers is named with HTML
    that would run a script: the page shows the name, runs nothing."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from cnn.layers import Conv2D, Dense, Flatten, MaxPooling2D

    cnn.set_seed(3)
    model = cnn.Sequential([Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1), name=INJECTED),
                            MaxPooling2D(2, name='<svg onload="document.body.dataset.pwned=2">'),
                            Flatten(), Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.save(tmp_path / "shared.npz")
    srv, url = _serve(cnn.load_model(tmp_path / "shared.npz"))
    try:
        browser.get(url + "/")
        wait_for(browser, "return document.body.dataset.ready === 'yes'")
        browser.execute_script("const s = document.getElementById('samples'); s.value = '4';"
                               "s.dispatchEvent(new Event('change'));")
        settle(browser)
        headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#layers h3")]
        assert any(INJECTED in h for h in headings), headings
        assert browser.execute_script("return document.querySelectorAll('#layers img, #layers b, #layers svg')"
                                      ".length") == 0
        canvas = browser.find_elements(By.CSS_SELECTOR, 'canvas.map[data-layer="0"]')[1]
        ActionChains(browser).move_to_element_with_offset(canvas, 1, 1).click().perform()
        wait_for(browser, "return document.getElementById('panel').dataset.cell")
        assert INJECTED in browser.find_element(By.ID, "panel-title").text
        time.sleep(0.5)  # an onerror handler, had the markup been parsed, would have run by now
        assert browser.execute_script("return document.body.dataset.pwned") is None
        assert browser.execute_script("return document.querySelectorAll('#panel img, #panel-title b').length") == 0
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_graphs_page_says_what_each_layer_reads_and_explains_a_sum(browser):
    """A skip connection in the page: the sum layer's heading names both of its
    inputs, and a clicked cell of it is the sum of the two cells it was made
    from, each the engine's number."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    L = cnn.layers
    cnn.set_seed(4)
    inputs = cnn.Input((28, 28, 1))
    a = L.Conv2D(3, 3, padding="same", activation="relu", name="a")(inputs)
    b = L.Conv2D(3, 3, padding="same", activation="relu", name="b")(a)
    skip = L.Conv2D(3, 1, name="skip")(inputs)
    x = L.add([b, skip], name="sum")
    model = cnn.Model(inputs, L.Dense(10, activation="softmax")(L.Flatten()(L.MaxPooling2D(2)(x))))
    srv, url = _serve(model)
    try:
        browser.get(url + "/")
        wait_for(browser, "return document.body.dataset.ready === 'yes'")
        browser.execute_script("const s = document.getElementById('samples'); s.value = '3';"
                               "s.dispatchEvent(new Event('change'));")
        settle(browser)
        reads = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#layers p.reads")]
        assert "reads b and skip" in reads and "reads the input" in reads, reads
        names = [layer.name for layer in model.layers]
        # the connections drawn: a line from a layer to each reader that is not the box drawn right after it
        links = {(int(p.get_attribute("data-from")), int(p.get_attribute("data-to")))
                 for p in browser.find_elements(By.CSS_SELECTOR, "#links path")}
        drawn = [int(b.get_attribute("data-index")) for b in browser.find_elements(By.CSS_SELECTOR, "#layers .layer")]
        expected_links = {(j, i) for k, i in enumerate(drawn) for j in model.producers()[i]
                          if j in drawn and (k == 0 or drawn[k - 1] != j)}
        assert links == expected_links and (names.index("b"), names.index("sum")) in links, (links, drawn)
        canvas = browser.find_elements(By.CSS_SELECTOR, f'canvas.map[data-layer="{names.index("sum")}"]')[1]
        ActionChains(browser).move_to_element_with_offset(canvas, 3, 3).click().perform()
        wait_for(browser, "return document.getElementById('panel').dataset.cell")
        panel = browser.find_element(By.ID, "panel")
        image = json.loads(panel.get_attribute("data-input"))
        row, col, channel = json.loads(panel.get_attribute("data-cell"))
        calls = model.trace(np.asarray(image, np.float32)[None, :, :, None] / 255)
        expected = float(calls[names.index("sum")][2][0, row, col, channel])
        parts = [float(calls[names.index(n)][2][0, row, col, channel]) for n in ("b", "skip")]
        assert float(browser.find_element(By.ID, "panel-engine").text) == pytest.approx(expected, abs=1e-3)
        assert float(browser.find_element(By.ID, "panel-value").text) == pytest.approx(sum(parts), abs=1e-3)
        text = panel.text
        assert "Add:" in text and "the same number" in text and f"b[{row}, {col}, {channel}]" in text
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------- concurrency
def _check_answer(model_names, path, status, answer):
    """An answer is right when it is whole and from one model: 200, probabilities
    summing to 1 over layers of one of the models, or an explained cell whose
    recomputed value (from that model's weights) is the engine's own."""
    assert status == 200, (path, answer)
    if path == "/api/predict":
        assert abs(sum(answer["probabilities"]) - 1) < 1e-3
        assert [l["name"] for l in answer["layers"]] in model_names
    else:
        assert answer["equal"], answer


def test_requests_racing_a_training_swap_are_answered_from_one_model(own_server):
    """Training swaps the served model when it ends; every request meanwhile,
    predictions and explanations alike, is answered wholly from one model."""
    srv, url = own_server
    before = [[l.name for l in srv.explorer.model.layers if len(l.output_shape) == 3]]
    for run in range(3):
        assert call(url, "/api/train", {"arch": "small", "epochs": 1, "n_train": 100})[0] == 200
        _, sample = call(url, "/api/predict", {"sample": run})
        while True:
            status, answer = call(url, "/api/predict", {"sample": run})
            _check_answer(before, "/api/predict", status, answer)
            status, answer = call(url, "/api/explain", {"input": sample["input"], "layer": 0, "row": 13, "col": 13,
                                                        "channel": 1})
            _check_answer(before, "/api/explain", status, answer)
            if not call(url, "/api/train")[1]["running"]:
                break
        assert call(url, "/api/train")[1]["error"] is None


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") / 2**20)


def test_a_loopback_load_while_training(own_server):
    """8 clients for 30 s of predictions and explanations while a model trains:
    every answer 200 and right, none slower than STALL seconds, memory flat
    (the process's resident size at the end within GROWTH MB of the size after
    the first 5 s: the buffers of a steady load are made by then)."""
    import threading

    STALL, GROWTH, SECONDS, CLIENTS = 10.0, 150, 30.0, 8
    srv, url = own_server
    names = [[l.name for l in srv.explorer.model.layers if len(l.output_shape) == 3]]
    _, sample = call(url, "/api/predict", {"sample": 7})
    assert call(url, "/api/train", {"arch": "small", "epochs": 50, "n_train": 4500})[0] == 200
    deadline = time.monotonic() + SECONDS
    answers, slowest, failures, lock = [0], [0.0], [], threading.Lock()
    rss = {}

    def client(k):
        rng = np.random.default_rng(k)
        while time.monotonic() < deadline:
            if rng.random() < 0.5:
                path, body = "/api/predict", {"sample": int(rng.integers(20))}
            else:
                path, body = "/api/explain", {"input": sample["input"], "layer": int(rng.integers(2)),
                                              "row": int(rng.integers(13)), "col": int(rng.integers(13)),
                                              "channel": int(rng.integers(8))}
            started = time.monotonic()
            try:
                status, answer = call(url, path, body)
                _check_answer(names, path, status, answer)
            except Exception as err:  # noqa: BLE001 - collected, asserted below
                with lock:
                    failures.append(f"{path}: {type(err).__name__}: {err}")
                return
            with lock:
                answers[0] += 1
                slowest[0] = max(slowest[0], time.monotonic() - started)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(5)
    rss["warm"] = _rss_mb()
    for t in threads:
        t.join()
    rss["end"] = _rss_mb()
    status = call(url, "/api/train")[1]
    call(url, "/api/train/stop", {})
    assert not failures, failures[:5]
    assert status["running"] and status["error"] is None  # the training ran all along
    assert answers[0] > 8 * 5, answers  # a few a second at least, or the load tested nothing
    assert slowest[0] < STALL, slowest
    assert rss["end"] - rss["warm"] < GROWTH, rss
    print(f"{answers[0]} answers in {SECONDS:.0f} s, slowest {slowest[0]:.2f} s, "
          f"RSS {rss['warm']:.0f} -> {rss['end']:.0f} MB")

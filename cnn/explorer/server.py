"""The explorer's web server: the standard library's threading HTTP server.

Why the standard library: the page is one HTML file, one script and one
style sheet, and the API is a handful of JSON calls, so a framework would
bring dependencies and nothing the learner can see; ``ThreadingHTTPServer``
gives each request its own thread (a slow client stalls nobody else), and the
handler below bounds what a request may be (size, time, values).

JSON API (every error is a 4xx answer ``{"error": "..."}``; the server keeps serving):

* ``GET /api/model``: the layers (index, name, type, output shape, kernel/pool sizes)
* ``GET /api/samples``: labels of the first test images; ``GET /api/samples/N``: one, as 28x28 pixels
* ``POST /api/predict`` ``{"image": {"width", "height", "pixels": [gray 0..255, row by row]}}``
  or ``{"sample": N}``: the 28x28 input the model sees (MNIST-style preparation,
  as ``cnn predict``), its ten probabilities, and every image-shaped layer's
  feature maps with their range
* ``POST /api/explain`` ``{"input": 28x28, "layer", "row", "col", "channel"}``: how one cell of
  a Conv2D or MaxPooling2D output came about: the window, the weights, the
  products, the sum, the bias, the activation, the value the engine computed,
  and the receptive field in the layer below
* ``POST /api/geometry`` ``{"size", "kernel", "stride", "dilation", "padding"}``: Keras's
  output size and padding (before, after) and every window's start
* ``POST /api/train`` ``{"arch", "epochs", "n_train"}``; ``GET /api/train``: its progress (epochs
  done, the history, the first layer's filters); ``POST /api/train/stop``
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from ..errors import CNNError
from .app import ApiError, Explorer

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_BODY = 4 << 20  # a 1024x1024 drawing as JSON numbers fits


class Handler(BaseHTTPRequestHandler):
    server_version = "cnn-explore"
    timeout = 15  # seconds a client may take to send its request
    explorer = None  # set by make_server

    def log_message(self, format, *args):  # quiet: the terminal shows the address, not every request
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body, allow_nan=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message):
        self._send(status, {"error": message})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        try:
            if path in FILES:
                name, kind = FILES[path]
                return self._send(200, (STATIC / name).read_bytes(), kind)
            if path.startswith("/api/"):
                return self._send(200, self.explorer.get(path[len("/api/"):]))
            return self._error(404, f"no page {path!r}")
        except ApiError as err:
            return self._error(err.status, str(err))
        except (CNNError, ValueError) as err:
            return self._error(400, str(err))

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if not path.startswith("/api/"):
            return self._error(404, f"no API call {path!r}")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._error(411, "a POST needs a Content-Length")
        if int(length) > MAX_BODY:
            return self._error(413, f"the request is {length} bytes; at most {MAX_BODY} are accepted")
        try:
            raw = self.rfile.read(int(length))
            body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant) if raw else {}
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            return self._error(400, f"the body is not JSON ({type(err).__name__}: {err})")
        except OSError:
            return None  # the client went away
        if not isinstance(body, dict):
            return self._error(400, "the body must be a JSON object")
        try:
            return self._send(200, self.explorer.post(path[len("/api/"):], body))
        except ApiError as err:
            return self._error(err.status, str(err))
        except (CNNError, ValueError, TypeError) as err:
            return self._error(400, str(err))

    def do_PUT(self):
        self._error(405, "only GET and POST")

    do_DELETE = do_PATCH = do_PUT


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(model, host="127.0.0.1", port=0, data=None):
    """A server for ``model`` (not yet serving: call ``serve_forever``)."""
    explorer = Explorer(model, data)
    handler = type("ExplorerHandler", (Handler,), {"explorer": explorer})
    server = Server((host, port), handler)
    server.explorer = explorer
    return server


def serve_in_thread(model, host="127.0.0.1", port=0, data=None):
    """Start a server in a background thread (for tests): returns (server, url)."""
    server = make_server(model, host, port, data)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://{server.server_address[0]}:{server.server_address[1]}"


def to_list(array, digits=4):
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()

"""The explorer's web server: the standard library's threading HTTP server.

Why the standard library: the page is one HTML file, one script and one
style sheet, and the API is a handful of JSON calls, so a framework would
bring dependencies and nothing the learner can see; ``ThreadingHTTPServer``
gives each request its own thread (a slow client stalls nobody else), and the
handler below bounds what a request may be (size, time, values).

Closed to other pages: every request must name this server in ``Host`` (the
address it is bound to, or ``localhost`` when that is a loopback address,
with its port), so a DNS-rebinding page under another name reads nothing; a
request a browser marks as coming from another page (``Origin`` not this
server's, ``Sec-Fetch-Site`` cross-site) is refused; and a POST must carry
``application/json``, which no page of another origin can send without the
browser asking first (and this server never answers that question yes).
Each refusal is a 403 with a message. Values from the engine or a model file
(layer names above all) reach the page as JSON and are rendered as text.

JSON API (every error is a 4xx answer ``{"error": "..."}``; the server keeps serving):

* ``GET /api/model``: the layers (index, name, type, output shape, kernel/pool sizes)
* ``GET /api/samples``: labels of the first test images; ``GET /api/samples/N``: one, as 28x28 pixels
  (``predict`` gives it as the model takes it: resized, and on 3 channels for a colour model)
* ``POST /api/predict`` ``{"image": {"width", "height", "pixels": [gray 0..255, row by row], "channels": 1}}``
  (``"channels": 3``: red, green, blue per pixel, a photo) or ``{"sample": N}``: the input the model sees,
  of its own size and channels (a drawing prepared as MNIST's digits were, as ``cnn predict`` does; a
  photo for a colour model resized), its probabilities, and every image-shaped layer's feature maps
* ``POST /api/backward`` ``{"input", "label"}``: the loss and every layer's gradient maps;
  ``/api/gradient`` (a weight's gradient), ``/api/input_gradient`` (a cell's), ``/api/dense`` (a dense
  unit and the softmax) and ``/api/step`` (one optimizer step, its rule) explain one number each
  (:mod:`cnn.explorer.backward`)
* ``POST /api/explain`` ``{"input", "layer", "row", "col", "channel"}``: how one cell of
  a Conv2D or MaxPooling2D output came about: the window, the weights, the
  products, the sum, the bias, the activation, the value the engine computed,
  and the receptive field in the layer below
* ``POST /api/geometry`` ``{"size", "kernel", "stride", "dilation", "padding"}``: Keras's
  output size and padding (before, after) and every window's start
* ``POST /api/train`` ``{"arch", "epochs", "n_train"}``; ``GET /api/train``: its progress (epochs
  done, the history, the first layer's filters); ``POST /api/train/stop``
"""
import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from ..errors import CNNError
from .app import MAX_SIDE, ApiError, Explorer

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
# the largest drawing /api/predict takes (MAX_SIDE x MAX_SIDE gray values, each at
# most "255," in JSON) and room for the rest of the object: a white 1024x1024
# canvas is 4 MiB of numbers alone
MAX_BODY = MAX_SIDE * MAX_SIDE * len("255,") + (64 << 10)


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
        # the page's own script and style only: no inline script, no other origin, no framing
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'; "
                         "form-action 'none'")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away: nobody to answer

    def _error(self, status, message):
        self._send(status, {"error": message})

    def _refused(self, post):
        """Why this request may not be answered (a message), or None. Checked
        before a byte of the body is read."""
        host = self.headers.get("Host")
        if host is None or not self.server.names_this(host):
            return (f"the Host header {host!r} does not name this server; use "
                    f"http://{sorted(self.server.allowed_hosts)[0]}/")
        origin = self.headers.get("Origin")
        if origin is not None and not (origin.strip().lower().startswith("http://")
                                       and self.server.names_this(origin.strip()[len("http://"):])):
            return f"requests from another page ({origin!r}) are not answered"
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            return f"a {site} request is not answered: only this server's own page may call it"
        if post:
            kind = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                return f"a POST must be application/json, got {self.headers.get('Content-Type')!r}"
        return None

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        refused = self._refused(post=False)
        if refused:
            return self._error(403, refused)
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
        refused = self._refused(post=True)
        if refused:
            return self._error(403, refused)
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

    @property
    def allowed_hosts(self):
        """The ``Host`` values that name this server: its address and port, and
        ``localhost`` with the port when the address is a loopback one."""
        host, port = self.server_address[:2]
        names = {f"[{host}]:{port}" if ":" in host else f"{host}:{port}"}
        if ipaddress.ip_address(host).is_loopback:
            names.add(f"localhost:{port}")
        return {name.lower() for name in names}

    def names_this(self, value):
        """Whether a ``Host`` header names this server. Bound to every address
        (0.0.0.0), any address literal with the port does; a name never does
        but ``localhost`` (a DNS-rebinding page comes under a name of its own)."""
        value = value.strip().lower()
        if value in self.allowed_hosts:
            return True
        host, port = self.server_address[:2]
        if not ipaddress.ip_address(host).is_unspecified:
            return False
        literal, _, given_port = value.rpartition(":")
        try:
            ipaddress.ip_address(literal.strip("[]"))
        except ValueError:
            return literal == "localhost" and given_port == str(port)
        return given_port == str(port)


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

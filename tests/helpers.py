"""The project's test helpers: the layer helper lives in :mod:`cnn.testing`
(users' suites import it from there); the shared small model is here."""
from cnn.testing import FD_TOLERANCE, assert_close_float32, keras_forward_and_grads  # noqa: F401
from cnn.testing import check_layer_against_keras as helper_test_layer  # noqa: F401


def small_model(seed=0, optimizer="adadelta", loss="categorical_crossentropy", dropout=(0.25, 0.5)):
    """A small CNN with every layer type, that trains in seconds on MNIST."""
    import cnn
    from cnn import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, Sequential

    cnn.set_seed(seed)
    model = Sequential([
        Conv2D(4, 3, padding="same", activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2),
        Dropout(dropout[0]),
        Flatten(),
        Dense(16, activation="relu"),
        Dropout(dropout[1]),
        Dense(10, activation="softmax"),
    ])
    model.compile(loss=loss, optimizer=optimizer, metrics=["acc"])
    return model


def explorer_api(url):
    """A client of the explorer's JSON API at ``url``."""
    import json
    import urllib.request

    def call(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    return call

"""``cnn explore``: a page in the browser where every number comes from this
engine (see :mod:`cnn.explorer.server` for its JSON API)."""

"""How the modules stand on each other: the file primitives import nothing of
the engine but its errors and limits; the two model formats (cnn.io, the
engine's .npz; cnn.keras_io, Keras's files) import the models and not each
other; the models reach the formats only through cnn.saving, when a save is
asked for, as Keras's Model.save reaches keras.saving. Every import counts,
those inside functions too."""
import ast
from pathlib import Path

import pytest

CNN = Path(__file__).resolve().parent.parent / "cnn"


def _engine_imports(name):
    """The cnn modules ``cnn/<name>.py`` imports anywhere in it, as module names ('io', 'layers.base'...)."""
    tree = ast.parse((CNN / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnn"):
            found.add(node.module.removeprefix("cnn").lstrip(".") or "cnn")
    return found


def test_the_file_primitives_import_nothing_of_the_engine():
    assert _engine_imports("files") <= {"errors", "limits"}
    assert _engine_imports("limits") == set() and _engine_imports("errors") == set()


@pytest.mark.parametrize("module,never", [
    ("io", {"keras_io", "saving"}),
    ("keras_io", {"io", "saving"}),
    ("model", {"io", "keras_io"}),
    ("functional", {"io", "keras_io"}),
])
def test_the_formats_and_the_models_do_not_import_each_other(module, never):
    assert not _engine_imports(module) & never, _engine_imports(module)


def test_the_models_reach_the_formats_through_saving_only_when_called():
    for module in ("model", "functional"):
        tree = ast.parse((CNN / f"{module}.py").read_text())
        top = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
        assert "saving" not in top  # imported inside save / get_config, not when the module loads

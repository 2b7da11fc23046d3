"""Every Python block of the guided tour and of the custom-layer guide runs,
in order, in one namespace per page."""
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "docs" / "tour.md"
CUSTOM_LAYERS = ROOT / "docs" / "custom-layers.md"


def python_blocks(path):
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


def run_page(path, tmp_path, name):
    namespace = {"__name__": name}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # anything a block writes lands here
    try:
        for number, block in enumerate(python_blocks(path), start=1):
            try:
                exec(compile(block, f"{path.name} block {number}", "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"block {number} of {path.name} failed: {err!r}\n{block}") from err
    finally:
        os.chdir(cwd)
    return namespace


def test_the_tour_has_code_and_it_all_runs(tmp_path, capsys):
    assert len(python_blocks(TOUR)) >= 10
    run_page(TOUR, tmp_path, "tour")
    printed = capsys.readouterr().out
    assert "Total params: 1,274,326" in printed and "sixseven" in printed


def test_the_custom_layer_guide_runs(tmp_path, capsys):
    assert len(python_blocks(CUSTOM_LAYERS)) >= 6
    run_page(CUSTOM_LAYERS, tmp_path, "custom_layers")
    printed = capsys.readouterr().out
    assert "beta: " in printed and "entries outside" in printed  # the broken layer was caught, and said so


def test_the_readme_links_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert "docs/tour.md" in readme and "docs/custom-layers.md" in readme


def test_every_picture_is_in_the_tour_and_the_script_makes_them(tmp_path):
    import subprocess
    import sys

    pictures = sorted(p.name for p in (ROOT / "docs" / "pictures").glob("*.png"))
    tour = TOUR.read_text()
    shown = set(re.findall(r"\(pictures/([\w.]+\.png)\)", tour))
    assert set(pictures) - {"drawing_seen_by_the_model.png"} <= shown, set(pictures) - shown  # (inside the pair)
    assert shown <= set(pictures)
    result = subprocess.run([sys.executable, "scripts/make_pictures.py", "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    made = {p.name for p in tmp_path.glob("*.png")}
    assert set(pictures) - {"made_up_digit.png"} <= made  # --quick leaves out the 50-epoch chapter program


def test_the_speed_tables_are_what_the_result_files_say():
    """Every table of the README's speed section is written by scripts/speed_tables.py
    from a committed file under benchmarks/results/, never typed."""
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- generated: (\w+) ([\w./-]+) -->", readme)
    assert {kind for kind, _ in blocks} == {"run", "conv", "layers", "profile", "accuracy", "lenet5"}, blocks
    for _, path in blocks:
        assert (ROOT / path).is_file() and path.startswith("benchmarks/results/"), path
    done = subprocess.run([sys.executable, "scripts/speed_tables.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    speed = readme[readme.index("## Speed"):readme.index("## Reliability")]
    outside = re.sub(r"<!-- generated: .*?<!-- end generated -->", "", speed, flags=re.S)
    assert not re.search(r"^\|.*\d", outside, flags=re.M), "a typed table row with figures in the speed section"


def test_a_busy_run_is_marked_in_its_table():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from speed_tables import run_table

    record = {"cpu": {"model": "x", "flags": ["avx2"]}, "cores": 2, "engine_threads": None, "versions": {},
              "blas": [], "load_before": [0, 0, 0], "load_after": [0, 0, 0], "other_cores_busy": 0.3, "busy": True}
    doc = {"date": "2026-12-03", "command": "python benchmarks/run.py --allow-busy", "record": record,
           "results": {"engine": {"train_images_per_s": {"min": 9, "median": 10, "max": 11, "runs": 3}},
                       "keras": {"train_images_per_s": {"min": 4, "median": 5, "max": 6, "runs": 3}},
                       "pytorch": {"missing": True}}}
    table = run_table(doc)
    assert "| chapter training, images/s | 10 (9-11) | 5 (4-6) | missing | 2.00x | - |" in table
    assert "MARKED" in table and "WARNING: the machine was busy" in table

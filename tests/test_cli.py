"""The cnn command, run as a user runs it: a subprocess, exit codes, files, output."""
import json
import re
import subprocess
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cnn.data import read_idx_images, write_text
from cnn.images import read_gray as read_png, write_png

ROOT = Path(__file__).resolve().parent.parent
TEST_IMAGES = ROOT / "data" / "t10k-images-idx3-ubyte.gz"
COMMANDS = ["train", "evaluate", "predict", "show", "explain-conv", "visualize", "explore", "gradcheck", "export"]


def cnn(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "cnn", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained by `cnn train`, with the files it leaves."""
    out = tmp_path_factory.mktemp("train") / "small.npz"
    result = cnn("train", "--arch", "small", "--epochs", "2", "--n-train", "300", "--out", out, "--progress", "yes")
    assert result.returncode == 0, result.stderr
    return out, result


def test_cnn_alone_prints_its_help():
    result = cnn()
    assert result.returncode == 0 and "usage: cnn" in result.stdout and "explain-conv" in result.stdout


def test_every_option_says_what_it_does():
    from cnn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"cnn {name} {action.option_strings or action.dest} has no help text"


def test_train_validates_on_held_out_training_images_not_on_the_test_set(trained):
    _, result = trained
    assert "(the last 30 held out for validation)" in result.stdout


def test_help_for_every_command():
    result = cnn("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
        sub = cnn(command, "--help")
        assert sub.returncode == 0 and sub.stdout.startswith("usage: cnn " + command), command


def test_the_installed_entry_point_runs():
    script = Path(sys.executable).parent / "cnn"
    assert script.exists(), "pip install -e . installs the cnn command beside the interpreter"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("cnn ")


def test_train_writes_model_history_and_curves(trained):
    out, result = trained
    # Keras 3's line: the logs by name (on TensorFlow they come sorted)
    assert re.search(r"^Epoch 1/2 - .*acc: \d\.\d{4} - loss: \d\.\d{4} - val_acc: .* - val_loss", result.stdout, re.M)
    assert re.search(r"^Epoch 2/2 ", result.stdout, re.M)
    assert "Epoch 1/2" in result.stderr  # the progress bar (tqdm writes to stderr)
    history = json.loads(out.with_suffix(".history.json").read_text())
    assert set(history) == {"loss", "acc", "val_loss", "val_acc"} and len(history["loss"]) == 2
    picture = read_png(out.with_suffix(".curves.png")).astype(float)
    assert picture.shape[0] > 100 and picture.std() > 10  # a drawn chart, not a blank


def test_evaluate_prints_per_class_and_confusion(trained):
    out, _ = trained
    result = cnn("evaluate", out, "--n-test", "300")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^300 test images: loss = \d+\.\d{4} accuracy = \d+\.\d\d%$", result.stdout, re.M)
    rows = re.findall(r"^ +(\d) +((?: +\d+){10})$", result.stdout, re.M)
    assert [int(r[0]) for r in rows] == list(range(10))
    assert sum(int(v) for _, counts in rows for v in counts.split()) == 300
    assert len(re.findall(r"^  \d +\w+: +\d+\.\d\d% of \d+$", result.stdout, re.M)) == 10


def test_predict_png_text_and_idx_records(trained, tmp_path):
    out, _ = trained
    first = read_idx_images(TEST_IMAGES, 2)
    write_png(tmp_path / "seven_dark_on_light.png", 255 - first[0], scale=4)
    write_text(tmp_path / "two.txt", first, np.array([7, 2]))
    result = cnn("predict", out, f"{TEST_IMAGES}:0", tmp_path / "seven_dark_on_light.png", tmp_path / "two.txt")
    assert result.returncode == 0, result.stderr
    verdicts = re.findall(r"^(.*): (\d) \((\w+)\) with probability (\d\.\d{4})$", result.stdout, re.M)
    assert len(verdicts) == 4
    assert "centred by its centre of mass" in result.stdout and "inverted" in result.stdout
    assert verdicts[0][1] == verdicts[1][1] == verdicts[2][1]  # the same '7', three ways in
    for line in re.findall(r"^  (0:.*)$", result.stdout, re.M):
        assert abs(sum(float(p.split(":")[1]) for p in line.split()) - 1) < 1e-3


def test_show_prints_the_hex_grid_and_a_picture(tmp_path):
    result = cnn("show", "--out", tmp_path / "five.png")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "train record 0: digit 5 (five), 28x28 pixels in hexadecimal"
    grid = [line.split() for line in lines[1:29]]
    assert all(len(row) == 28 and all(re.fullmatch(r"[0-9A-F]{2}", v) for v in row) for row in grid)
    assert grid[5][12:16] == ["03", "12", "12", "12"]  # MNIST's first image, as in Figure 5-2
    picture = read_png(tmp_path / "five.png")
    assert picture.shape[0] > 224 and picture[0, 0] == 255 and picture[:224].min() == 0  # the digit, then its caption


def test_explain_conv_default_is_figure_5_3():
    result = cnn("explain-conv")
    assert result.returncode == 0, result.stderr
    assert "Image 5x5, padded with 1 row/column of zeros on every side -> 7x7" in result.stdout
    assert "Stride 1 -> output 5x5" in result.stdout
    assert len(re.findall(r"^  out\[\d,\d\] = ", result.stdout, re.M)) == 25
    assert "out[0,0] = 0*1 + 0*0 + 0*(-1) + 0*1 + 1*0 + 0*(-1) + 0*1 + 0*0 + 1*(-1) = -1" in result.stdout
    assert "this is exactly the output above, and what the engine's kernels/conv.py computes" in result.stdout


def test_explain_conv_prints_columns_as_wide_as_their_numbers():
    # the tour's example: the output 12 and 14 once ran into their neighbours ("1214 6")
    result = cnn("explain-conv", "--image", "1 2 3; 4 5 6; 7 8 9", "--filter", "1 0; 0 1", "--padding", "same")
    assert result.returncode == 0, result.stderr
    assert "\n   12 14  6\n" in result.stdout
    valid = cnn("explain-conv", "--image", "1 2 3; 4 5 6; 7 8 9", "--filter", "1 0; 0 1", "--padding", "valid")
    assert "no padding ('valid'" in valid.stdout and "zeros" not in valid.stdout.split("\n")[0]


def test_explain_conv_channels_filters_dilation_and_the_backward_pass():
    result = cnn("explain-conv", "--image", "1 2 3; 4 5 6; 7 8 9 | 0 1 0; 1 0 1; 0 1 0",
                 "--filter", "1 -1; 0 2 | 1 1; 1 1", "--filter", "0 1; 1 0 | -1 0; 0 1",
                 "--padding", "valid", "--backward", "--dout", "1 2; 3 4 | 1 0; 0 1")
    assert result.returncode == 0, result.stderr
    # out[0,0] of filter 0: channel 0 [1*1 + 2*(-1) + 4*0 + 5*2] + channel 1 [0 + 1 + 1 + 0] = 9 + 2
    assert "out[0,0,0] = [1*1 + 2*(-1) + 4*0 + 5*2] + [0*1 + 1*1 + 1*1 + 0*1] = 11" in result.stdout
    assert "dW[0,0,0,0] = 1*1 + 2*2 + 4*3 + 5*4 = 37" in result.stdout
    assert "Both are what the engine's conv2d_backward computes." in result.stdout
    dilated = cnn("explain-conv", "--image", "; ".join(" ".join(str(r * 5 + c) for c in range(5)) for r in range(5)),
                  "--filter", "1 0; 0 1", "--dilation", "2", "--padding", "valid", "--backward")
    assert dilated.returncode == 0 and "the 2x2 filter spans 3x3" in dilated.stdout
    assert "out[0,0] = 0*1 + 2*0 + 10*0 + 12*1 = 12" in dilated.stdout


def test_explain_conv_with_same_padding_and_stride():
    result = cnn("explain-conv", "--image", "1 2 3 4; 5 6 7 8; 9 10 11 12; 13 14 15 16",
                 "--filter", "1 1 1; 1 1 1; 1 1 1", "--stride", "2", "--padding", "same")
    assert result.returncode == 0, result.stderr
    # 'same', stride 2 on 4x4 with 3x3: total padding 1, all of it at the bottom/right
    assert "-> 5x5" in result.stdout and "output 2x2" in result.stdout
    assert "out[0,0] = 1*1 + 2*1 + 3*1 + 5*1 + 6*1 + 7*1 + 9*1 + 10*1 + 11*1 = 54" in result.stdout
    assert "out[1,1] = 11*1 + 12*1 + 0*1 + 15*1 + 16*1 + 0*1 + 0*1 + 0*1 + 0*1 = 54" in result.stdout


def test_visualize_writes_four_pictures(trained, tmp_path):
    out, _ = trained
    result = cnn("visualize", out, "--out", tmp_path / "pics", "--index", "3")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert names == ["confusion.png", "curves.png", "feature_maps.png", "filters.png"]
    for name in names:
        picture = read_png(tmp_path / "pics" / name)
        assert picture.size > 100_000 and picture.std() > 10, name


def test_gradcheck_table():
    result = cnn("gradcheck")
    assert result.returncode == 0, result.stderr
    from cnn.cli import gradcheck_cases, gradcheck_losses

    rows = [line for line in result.stdout.splitlines() if line.endswith("* |numeric|")]
    assert len(rows) == len(gradcheck_cases()) + len(gradcheck_losses())  # every case, each with its tolerance
    assert "all passed" in result.stdout and "FAILED" not in result.stdout


@pytest.mark.parametrize("args,code,message", [
    (["nonsense"], 2, "invalid choice"),
    (["train", "--validation-split", "1.5"], 2, "--validation-split must be in [0, 1)"),
    (["train", "--epochs", "0"], 2, "--epochs must be >= 1"),
    (["train", "--optimizer", "nadam"], 2, "invalid choice"),
    (["train", "--data", "/nonexistent"], 1, "error: /nonexistent: no such directory"),
    (["evaluate", "missing.npz"], 1, "error: missing.npz: no such file"),
    (["predict", "missing.npz", "x.png"], 1, "error: missing.npz: no such file"),
    (["show", "--index", "99999"], 1, "has only 4500 records"),
    (["explain-conv", "--image", "1 2; 3"], 1, "same number of values"),
    (["explain-conv", "--image", "1 2; 3 x"], 1, "write numbers"),
    (["explain-conv", "--image", "1 2; 3 4", "--padding", "valid"], 1, "smaller than the window"),
    (["explain-conv", "--padding", "lots"], 2, "argument --padding: must be"),  # a bad argument: exit 2
])
def test_bad_arguments_get_one_clear_line(args, code, message):
    result = cnn(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_refuses_bad_images(trained, tmp_path):
    out, _ = trained
    write_png(tmp_path / "odd.png", np.zeros((30, 20), np.uint8))
    (tmp_path / "not.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    for name, message in (("not.png", "not an image file"), (f"{TEST_IMAGES}:20000", "has only 10000 records")):
        result = cnn("predict", out, tmp_path / name if name.endswith("png") else name)
        assert result.returncode == 1 and message in result.stderr, result.stderr
    blank = cnn("predict", out, tmp_path / "odd.png")  # any size is read; an empty one is not predicted from
    assert blank.returncode == 1 and "the picture is empty" in blank.stderr and "Predicted" not in blank.stdout


def test_in_a_terminal_each_epoch_line_starts_on_its_own(tmp_path):
    # tqdm's bar and the epoch line share the terminal: the bar must be gone before the line prints
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child runs the command on the terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "cnn", "train", "--arch", "small", "--epochs", "3",
                                  "--n-train", "300", "--out", str(tmp_path / "t.npz")])
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    screen = b"".join(chunks).decode("utf-8", "replace")
    lines = [line.rsplit("\r", 1)[-1] for line in screen.replace("\r\n", "\n").split("\n")]  # what the eye sees
    assert sum(line.startswith("Epoch ") and " - loss: " in line for line in lines) == 3, screen
    assert not any("batch/s" in line and " - loss: " in line for line in lines), screen


def test_train_augment_puts_the_augmentation_at_the_models_start_and_repeats_with_the_seed(tmp_path):
    import cnn as engine

    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.npz"
        result = cnn("train", "--arch", "small", "--epochs", "2", "--n-train", "200", "--augment", "--out", out,
                     "--progress", "no")
        assert result.returncode == 0, result.stderr
        runs.append((out, result.stdout))
    assert ("augmented in training only: RandomRotation(factor=[-0.05, 0.05], fill_mode='constant'), RandomTranslation("
            "height_factor=0.1, width_factor=0.1, fill_mode='constant'), RandomZoom(height_factor=0.1, "
            "width_factor=None, fill_mode='constant')") in runs[0][1]
    histories = [json.loads(out.with_suffix(".history.json").read_text()) for out, _ in runs]
    assert histories[0] == histories[1]  # the same augmented batches from the same seed
    plain = cnn("train", "--arch", "small", "--epochs", "2", "--n-train", "200", "--out", tmp_path / "p.npz",
                "--progress", "no")
    assert plain.returncode == 0, plain.stderr
    assert json.loads((tmp_path / "p.history.json").read_text())["loss"] != histories[0]["loss"]
    model = engine.load_model(runs[0][0])
    assert [type(layer).__name__ for layer in model.layers[:3]] == ["RandomRotation", "RandomTranslation",
                                                                    "RandomZoom"]
    x = engine.datasets.mnist.load_data()[1][0][:5, :, :, None].astype(np.float32) / 255
    for layer in model.layers[:3]:
        np.testing.assert_array_equal(layer(x), x)  # predict and evaluate see the images unchanged


def test_show_augment_draws_a_batch_before_and_after(tmp_path):
    said = []
    for seed in (2, 2, 3):
        result = cnn("show", "--augment", "4", "--seed", seed, "--out", tmp_path / f"{seed}.png")
        assert result.returncode == 0, result.stderr
        said.append(result.stdout)
    assert said[0].startswith("train records 0 to 3, augmented with seed 2: RandomRotation(factor=[-0.05, 0.05]")
    change = [float(re.search(r"mean absolute change per pixel: (\d\.\d{4})", s).group(1)) for s in said]
    assert change[0] == change[1] != change[2] and 0.01 < change[0] < 0.5
    picture = read_png(tmp_path / "2.png").astype(float)
    assert picture.shape[1] > 300 and picture.std() > 10
    refused = cnn("show", "--augment", "4")
    assert refused.returncode != 0 and "give --out FILE.png" in refused.stderr

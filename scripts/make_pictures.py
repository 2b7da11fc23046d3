"""Regenerate every picture the `cnn` command makes, for docs/ and the tour.

    python scripts/make_pictures.py [--out docs/pictures] [--quick]

Trains the chapter's model as `cnn train` does (seed 2, 1,000 images, 50
epochs; ``--quick``: the small model for 2 epochs, for the tests), then runs
the commands whose pictures the docs show: `cnn show` (the chapter's Figure
5-2, and a batch before and after `cnn train --augment`'s augmentation), `cnn visualize` (filters, feature maps, confusion matrix, training
curves), `cnn predict --show-input` on a drawing that is not MNIST (with the
drawing beside what the model saw), and the chapter program's made-up digit.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def cnn(*args):
    result = subprocess.run([sys.executable, "-m", "cnn", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"cnn {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def side_by_side(drawing, seen, out, caption):
    """The drawing and the 28x28 the model saw, one picture, captioned."""
    from PIL import Image, ImageDraw, ImageFont

    left = Image.open(drawing).convert("RGBA")
    page = Image.new("RGBA", left.size, (255, 255, 255, 255))
    left = Image.alpha_composite(page, left).convert("L").resize((224, 224))
    right = Image.open(seen).convert("L").resize((224, 224), Image.Resampling.NEAREST)
    font = ImageFont.load_default(size=13)
    sheet = Image.new("L", (224 * 2 + 30, 224 + 24 + 17 * len(caption.split("\n"))), 255)
    sheet.paste(left, (10, 10))
    sheet.paste(right, (224 + 20, 10))
    draw = ImageDraw.Draw(sheet)
    for k, line in enumerate(caption.split("\n")):
        draw.text((10, 240 + 17 * k), line, fill=0, font=font)
    sheet.save(out)


def chromium(width, height):
    """Debian's headless Chromium, driven by Selenium, in a window of this size."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def explorer_screenshot(model_path, out):
    """`cnn explore` in headless Chromium: a 7 drawn, a convolution cell clicked, the page photographed."""
    import time

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from cnn.explorer.server import serve_in_thread
    from cnn.saving import load_model

    server, url = serve_in_thread(load_model(model_path))
    driver = chromium(1400, 1250)
    try:
        driver.get(url + "/")
        for _ in range(100):
            if driver.execute_script("return document.body.dataset.ready") == "yes":
                break
            time.sleep(0.1)
        pad = driver.find_element(By.ID, "pad")
        chain = ActionChains(driver).move_to_element_with_offset(pad, -60, -90).click_and_hold()
        for dx, dy in [(40, 0), (60, 0), (-20, 60), (-20, 60), (-20, 60)]:
            chain = chain.move_by_offset(dx, dy)
        chain.release().perform()
        for _ in range(100):
            if driver.execute_script("return document.body.dataset.predictions > 0"
                                     " && document.body.dataset.inflight === '0'"):
                break
            time.sleep(0.1)
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(5):  # the maps are redrawn after each prediction: find the canvas again if replaced
            try:
                cell = driver.find_elements(By.CSS_SELECTOR, 'canvas.map[data-layer="0"]')[6]
                ActionChains(driver).move_to_element_with_offset(cell, 0, -4).click().perform()
                break
            except StaleElementReferenceException:
                time.sleep(0.2)
        time.sleep(1.0)
        driver.execute_script("document.getElementById('layers-section').scrollIntoView()")
        time.sleep(0.3)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        server.shutdown()


def explorer_backward_screenshot(model_path, out):
    """The explorer's backward pass in headless Chromium: a test image, its gradient maps, a weight's gradient."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from cnn.explorer.server import serve_in_thread
    from cnn.saving import load_model

    server, url = serve_in_thread(load_model(model_path))
    driver = chromium(1400, 1100)

    def wait(script):
        for _ in range(300):
            if driver.execute_script(script):
                return
            time.sleep(0.1)
        raise SystemExit(f"the page never got to: {script}")

    try:
        driver.get(url + "/")
        wait("return document.body.dataset.ready === 'yes'")
        Select(driver.find_element(By.ID, "samples")).select_by_value("0")
        wait("return document.body.dataset.predictions > 0 && document.body.dataset.inflight === '0'")
        driver.find_element(By.ID, "b-run").click()
        wait("return document.body.dataset.backwards >= 1")
        driver.execute_script("document.querySelectorAll('#b-kernel td.weight')[4].click()")
        wait("return document.getElementById('b-panel').dataset.kind === 'weight_gradient'")
        driver.execute_script("document.getElementById('backward-section').scrollIntoView()")
        time.sleep(0.3)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        server.shutdown()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pictures")
    parser.add_argument("--quick", action="store_true", help="a small model for 2 epochs (for the tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from make_drawings import make

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = work / "chapter.npz"
        arch = ["--arch", "small", "--epochs", "2"] if args.quick else []
        cnn("train", *arch, "--out", model, "--progress", "no")
        cnn("visualize", model, "--out", args.out, "--index", "0")
        cnn("show", "--out", args.out / "first_training_image.png")
        cnn("show", "--augment", 8, "--out", args.out / "augmented.png")
        drawings = make(work / "drawings")
        seven = next(path for path, digit in drawings if digit == 7)
        said = cnn("predict", model, seven, "--show-input", args.out / "drawing_seen_by_the_model.png")
        verdict = next(line for line in said.splitlines() if "with probability" in line).split(": ", 1)[1]
        side_by_side(seven, args.out / "drawing_seen_by_the_model.png", args.out / "drawing_and_input.png",
                     "Left: a 7 drawn on a 280x280 canvas (not from MNIST).\n"
                     "Right: the 28x28 the model sees after the MNIST-style preparation.\n"
                     f"Prediction: {verdict}.")
        if Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists():
            explorer_screenshot(model, args.out / "explorer.png")
            explorer_backward_screenshot(model, args.out / "explorer_backward.png")
        else:
            print("note: no explorer.png or explorer_backward.png (Debian's chromium and chromium-driver are not "
                  "installed)")
        if not args.quick:
            subprocess.run([sys.executable, "scripts/mnist_cnn.py", "--out", work / "chapter"], cwd=ROOT, check=True,
                           capture_output=True)
            (args.out / "made_up_digit.png").write_bytes((work / "chapter" / "made_up_digit.png").read_bytes())
    for path in sorted(args.out.glob("*.png")):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()

"""Drawings of digits that are not MNIST, for the prediction tests and the docs.

    python tests/make_drawings.py OUT_DIR

Each digit is a few pen strokes (polylines and arcs in a unit box, drawn the
way a hand draws them), rendered with Pillow at several canvas sizes, pen
thicknesses and positions, on a white page (dark ink), a black page (light
ink) or a transparent canvas, as PNG or JPEG. The list below is the whole
test set: ten drawings, one per digit.
"""
import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw


def arc(cx, cy, rx, ry, start, stop, steps=24):
    """Points of an elliptic arc, angles in degrees (0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in (start + (stop - start) * i / steps for i in range(steps + 1))]


STROKES = {
    0: [arc(0.5, 0.5, 0.3, 0.42, 0, 360)],
    1: [[(0.42, 0.22), (0.56, 0.08), (0.5, 0.92)]],
    2: [arc(0.5, 0.32, 0.3, 0.22, 180, 360 + 40) + [(0.18, 0.9), (0.85, 0.9)]],
    3: [arc(0.48, 0.3, 0.28, 0.2, 200, 450), arc(0.48, 0.7, 0.32, 0.22, 270, 520)],
    4: [[(0.6, 0.08), (0.14, 0.64), (0.86, 0.64)], [(0.64, 0.34), (0.64, 0.95)]],
    5: [[(0.82, 0.1), (0.3, 0.1), (0.25, 0.46)] + arc(0.5, 0.66, 0.32, 0.25, 220, 500)],
    6: [[(0.72, 0.08), (0.4, 0.3), (0.25, 0.62)] + arc(0.5, 0.68, 0.25, 0.24, 180, 540)],
    7: [[(0.14, 0.12), (0.86, 0.12), (0.42, 0.93)]],
    8: [arc(0.5, 0.28, 0.22, 0.19, 90, 450), arc(0.5, 0.7, 0.27, 0.23, -90, 270)],
    9: [arc(0.48, 0.32, 0.26, 0.22, 0, 360), [(0.74, 0.32), (0.68, 0.62), (0.6, 0.93)]],
}

# digit, canvas size, digit box (fraction of the canvas), offset of the box's centre, pen (fraction), page, format
DRAWINGS = [
    (0, 280, 0.9, (0.0, 0.0), 0.08, "white", "png"),     # fills the canvas
    (1, 300, 0.5, (0.2, -0.15), 0.06, "dark", "png"),     # small and off-centre, light ink on black
    (2, 120, 0.7, (-0.1, 0.05), 0.10, "transparent", "png"),
    (3, 400, 0.8, (0.05, 0.0), 0.05, "white", "jpeg"),     # a photo-like format
    (4, 200, 0.6, (-0.15, 0.15), 0.09, "white", "png"),
    (5, 90, 0.85, (0.0, 0.0), 0.11, "dark", "jpeg"),
    (6, 640, 0.4, (0.25, 0.25), 0.05, "transparent", "png"),  # small in a corner of a big canvas
    (7, 280, 0.95, (0.0, 0.0), 0.07, "white", "png"),       # the "7" that fills the canvas
    (8, 150, 0.75, (0.05, -0.05), 0.08, "dark", "png"),
    (9, 333, 0.7, (-0.05, 0.1), 0.07, "white", "jpeg"),
]


def draw(digit, size, box, offset, pen, page, fmt):
    mode, background, colour = {"white": ("RGB", (255, 255, 255), (20, 20, 40)),
                                 "dark": ("RGB", (0, 0, 0), (250, 250, 250)),
                                 "transparent": ("RGBA", (0, 0, 0, 0), (30, 30, 200, 255))}[page]
    image = Image.new(mode, (size, size), background)
    pen_draw = ImageDraw.Draw(image)
    width = max(2, round(pen * size * box))
    side = box * size
    ox = size / 2 + offset[0] * size - side / 2
    oy = size / 2 + offset[1] * size - side / 2
    for stroke in STROKES[digit]:
        points = [(ox + x * side, oy + y * side) for x, y in stroke]
        pen_draw.line(points, fill=colour, width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends
            pen_draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=colour)
    return image


def make(folder):
    """Write the drawings to ``folder``; returns [(path, digit)]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number, (digit, size, box, offset, pen, page, fmt) in enumerate(DRAWINGS):
        image = draw(digit, size, box, offset, pen, page, fmt)
        path = folder / f"drawing_{number}_digit{digit}_{page}_{size}px.{'jpg' if fmt == 'jpeg' else 'png'}"
        image.save(path, format=fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {}))
        made.append((path, digit))
    return made


if __name__ == "__main__":
    for path, digit in make(sys.argv[1] if len(sys.argv) > 1 else "drawings"):
        print(path, digit)

"""A set of label photos made from one clean label with ImageMagick.

Each class imitates one way a photo of a cylinder's label goes wrong at a filling
station or a customer's door: turned at any angle, shot at a slant, shaken, out of
focus, grainy, faded, half in shadow, squeezed by JPEG, partly covered, scratched,
bent round the cylinder, printed light-on-dark, or small in a large frame. Every
photo carries the same text as the clean label. The set is the same every run: all
noise is seeded.

Used by scan_photos_test.py (pass counts with floors) and tools/bench/bench.py
photos (speed and pass rate against zbarimg and ZXing's defaults). blank_png, the
costliest photo to read (no code in a large frame), by registry_edge_test.py and
bench.py photo-load.
"""

import concurrent.futures
import os
import struct
import subprocess
import zlib

# The real ImageMagick: a machine may put a stand-in called convert earlier on PATH.
CONVERT = "/usr/bin/convert"

SCENE = 900  # the photo's side in pixels, before any turn or distortion
BACKGROUND = "gray62"


def _scene(label, seed):
    """The clean label on a grainy grey background, as a camera would frame it."""
    return ["(", "-size", f"{SCENE}x{SCENE}", f"xc:{BACKGROUND}", "-seed", str(seed),
            "-attenuate", "0.4", "+noise", "Gaussian", "-blur", "0x1.5", ")",
            "(", label, "-bordercolor", "white", "-border", "12",
            "-resize", f"{int(SCENE * 0.62)}x{int(SCENE * 0.62)}>", ")",
            "-gravity", "center", "-composite", "+gravity", "-colorspace", "Gray"]


def _classes(qr_box):
    """(class, variant, ImageMagick operators after the scene, file suffix).

    qr_box: the symbol's (x0, y0, x1, y1) within the scene, for covering it."""
    x0, y0, x1, y1 = qr_box
    side = x1 - x0
    out = []
    for angle in range(0, 360, 15):
        out.append(("rotation", f"{angle:03d}",
                    ["-background", BACKGROUND, "-rotate", str(angle)], "png"))
    s = SCENE - 1
    for d in (60, 120, 180, 240, 300):
        out.append(("perspective", f"top-{d}",
                    ["-virtual-pixel", "background", "-background", BACKGROUND, "-distort",
                     "Perspective", f"0,0 {d},0 {s},0 {s - d},0 0,{s} 0,{s} {s},{s} {s},{s}"],
                    "png"))
    for d in (100, 200):
        out.append(("perspective", f"side-{d}",
                    ["-virtual-pixel", "background", "-background", BACKGROUND, "-distort",
                     "Perspective",
                     f"0,0 0,{d} {s},0 {s},0 0,{s} 0,{s - d} {s},{s} {s},{s}"], "png"))
    for i, radius in enumerate((3, 5, 7, 9, 12, 15)):
        out.append(("motion-blur", f"r{radius}",
                    ["-motion-blur", f"0x{radius}+{(i * 37) % 180}"], "png"))
    for sigma in (1, 2, 3, 4, 5, 6):
        out.append(("gaussian-blur", f"s{sigma}", ["-gaussian-blur", f"0x{sigma}"], "png"))
    for i, amount in enumerate((2, 4, 6, 8, 10, 14)):
        out.append(("noise", f"a{amount}",
                    ["-seed", str(100 + i), "-attenuate", str(amount), "+noise", "Gaussian"],
                    "png"))
    for lo, hi in ((30, 70), (40, 60), (45, 55), (47, 53), (0, 12), (88, 100)):
        out.append(("low-contrast", f"{lo}-{hi}", ["+level", f"{lo}%,{hi}%"], "png"))
    for dark in (60, 35, 20, 10):
        out.append(("uneven-light", f"linear-{dark}",
                    ["(", "+clone", "-sparse-color", "Barycentric",
                     f"0,0 white {s},{s} gray{dark}", ")", "-compose", "Multiply",
                     "-composite"], "png"))
    for dark in (30, 12):
        out.append(("uneven-light", f"spot-{dark}",
                    ["(", "+clone", "-sparse-color", "Shepards",
                     f"{s // 3},{s // 3} white {s},{s} gray{dark} 0,{s} gray{dark} {s},0 "
                     f"gray{dark}", ")", "-compose", "Multiply", "-composite"], "png"))
    for scale in (100, 70, 50, 40, 33, 28):
        out.append(("jpeg-q30", f"scale{scale}", ["-resize", f"{scale}%", "-quality", "30"],
                    "jpg"))
    # Covers over the data region, clear of the three finder patterns.
    for frac in (0.08, 0.12, 0.16, 0.20, 0.24):
        w = int(side * frac * 2)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2 + side // 8
        out.append(("covered", f"{int(frac * 100)}",
                    ["-fill", "gray45", "-draw",
                     f"rectangle {cx - w // 2},{cy - side // 10} {cx + w // 2},{cy + side // 10}"],
                    "png"))
    for n in (4, 8, 14, 20):
        lines = []
        for k in range(n):
            ax = x0 + (k * 97) % side
            ay = y0 + (k * 53) % side
            bx = x0 + (k * 61 + side // 2) % side
            by = y0 + (k * 29 + side // 3) % side
            lines += ["-draw", f"line {ax},{ay} {bx},{by}"]
        out.append(("scratched", f"n{n}",
                    ["-stroke", "white", "-strokewidth", "3"] + lines +
                    ["-stroke", "gray30", "-strokewidth", "2"] + lines[: len(lines) // 2],
                    "png"))
    for angle in (40, 60, 80, 100, 120):
        out.append(("curved", f"a{angle}",
                    ["-virtual-pixel", "background", "-background", BACKGROUND,
                     "-distort", "Plane2Cylinder", str(angle)], "png"))
    for i, extra in enumerate(([], ["-rotate", "30"], ["-gaussian-blur", "0x2"],
                               ["+level", "30%,70%"], ["-quality", "40"])):
        suffix = "jpg" if "-quality" in extra else "png"
        out.append(("inverted", f"v{i}", ["-background", BACKGROUND] + extra + ["-negate"],
                    suffix))
    return out


def _small(label, path, module_scale, position, seed):
    """The label shrunk by module_scale inside a 3000 x 2000 frame."""
    w, h = 3000, 2000
    px, py = position
    return [CONVERT, "-size", f"{w}x{h}", f"xc:{BACKGROUND}", "-seed", str(seed),
            "-attenuate", "0.4", "+noise", "Gaussian", "(", label, "-bordercolor", "white",
            "-border", "12", "-resize", f"{module_scale}%", ")", "-geometry",
            f"+{px}+{py}", "-composite", "-colorspace", "Gray", "-quality", "85", path]


def make_photo_set(label, qr_box, out_dir, jobs=2):
    """Writes the set under out_dir; returns [(class, variant, path)] in a fixed order.

    qr_box: the symbol's (x0, y0, x1, y1) in the scene (see scene_qr_box)."""
    os.makedirs(out_dir, exist_ok=True)
    commands, photos = [], []
    for i, (cls, variant, ops, suffix) in enumerate(_classes(qr_box)):
        path = os.path.join(out_dir, f"{cls}-{variant}.{suffix}")
        commands.append([CONVERT] + _scene(label, 7 + i) + ops + [path])
        photos.append((cls, variant, path))
    for i, (scale, pos) in enumerate(((40, (200, 150)), (30, (2200, 1300)), (25, (1400, 900)),
                                      (20, (100, 1500)), (16, (2600, 200)))):
        path = os.path.join(out_dir, f"small-{scale}.jpg")
        commands.append(_small(label, path, scale, pos, 300 + i))
        photos.append(("small", f"{scale}", path))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for cmd, result in zip(commands, pool.map(_run, commands)):
            if result.returncode != 0:
                raise RuntimeError(f"ImageMagick failed: {' '.join(cmd)}: {result.stderr}")
    return photos


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def read_pgm(path):
    """(width, height, bytes) of an image, through ImageMagick's 8-bit PGM."""
    data = subprocess.run([CONVERT, path, "-colorspace", "Gray", "-depth", "8", "pgm:-"],
                          capture_output=True, check=True).stdout
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval, each followed by white space
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    return int(fields[1]), int(fields[2]), data[pos + 1:]


def symbol_box(label):
    """The symbol's (x0, y0, x1, y1) in a label: the rows whose dark pixels span most
    of the width (the text lines above and under it are narrower)."""
    w, h, px = read_pgm(label)
    rows = []
    for y in range(h):
        row = px[y * w:(y + 1) * w]
        dark = [x for x in range(w) if row[x] < 128]
        if dark and dark[-1] - dark[0] >= 0.7 * w:
            rows.append((y, dark[0], dark[-1]))
    if not rows:
        raise ValueError(f"no symbol found in {label}")
    return (min(r[1] for r in rows), rows[0][0], max(r[2] for r in rows) + 1, rows[-1][0] + 1)


def scene_qr_box(label):
    """Where the symbol of `label` lands in the scene: symbol_box mapped through the
    scene's white border, resize and centring."""
    w, h, _ = read_pgm(label)
    bx0, by0, bx1, by1 = symbol_box(label)
    w, h = w + 24, h + 24  # the white border added in _scene
    limit = int(SCENE * 0.62)
    scale = min(1.0, limit / max(w, h))
    ox = (SCENE - w * scale) / 2
    oy = (SCENE - h * scale) / 2
    return (int(ox + (bx0 + 12) * scale), int(oy + (by0 + 12) * scale),
            int(ox + (bx1 + 12) * scale), int(oy + (by1 + 12) * scale))


def blank_png(side):
    """A white side x side 8-bit grayscale PNG, made here without ImageMagick: tens of
    kB to send, every pixel searched when decoded."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    pixels = zlib.compress((b"\x00" + b"\xff" * side) * side, 9)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))

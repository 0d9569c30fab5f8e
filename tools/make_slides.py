#!/usr/bin/python3
"""Makes small whole-slide images from the BreakHis samples in ../shared, for the wsi plugin's
tests and for configs/wsi_breakhis.toml. There are no slides in ../shared: these are pyramidal,
tiled TIFFs (libvips, `vips tiffsave --tile --pyramid`), which OpenSlide reads as generic
TIFFs, with a known resolution of 0.5 microns per pixel and known regions.

    /usr/bin/python3 tools/make_slides.py OUT_DIR [SHARED_DIR]

Writes into OUT_DIR (Debian packages: libvips-tools, python3-tifffile, python3-numpy, python3-pil):
  slide_{benign,malignant}_{1..4}.tif  4 half BreakHis images (350 x 460) in a row, 128 px of white
                                       around: 1656 x 716 px, one class per slide (JPEG tiles)
  slides.csv                           slide,label,patient (benign_1 and benign_2: one patient)
  mixed_{1..4}.tif                     a benign image (x 128-828, y 128-588), 100 px of white, a
                                       malignant one (x 928-1628): 1756 x 716 px (JPEG tiles)
  mixed_{1..4}.geojson                 QuPath-style regions: "benign" over the left image, "malignant"
                                       over the right one with a hole (x 1178-1378, y 258-458), an
                                       unclassified outline and a point (both ignored)
  mixed.csv                            slide,patient of the mixed slides
  tiles.csv                            slide,x,y,label: a tile manifest over the mixed slides
  exact.tif, exact.png                 mixed_1 with lossless (deflate) tiles, and its level 0 as PNG
  blank.tif                            white, no tissue
  no_resolution.tif                    a tiled pyramid without any resolution tag (tifffile)
"""
import csv, json, os, subprocess, sys

import numpy as np
from PIL import Image

out = sys.argv[1]
shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
src = os.path.join(shared, "data", "breakhis-samples")
os.makedirs(out, exist_ok=True)
benign = sorted(os.path.join(src, "benign", f) for f in os.listdir(os.path.join(src, "benign")))
malignant = sorted(os.path.join(src, "malignant", f) for f in os.listdir(os.path.join(src, "malignant")))
MARGIN, MPP = 128, 0.5


def rgb(path):
    return np.asarray(Image.open(path).convert("RGB").resize((700, 460)))


def canvas(width, height):
    return np.full((height, width, 3), 255, np.uint8)


def save_slide(pixels, name, compression="jpeg"):
    png = os.path.join(out, name + ".png")
    Image.fromarray(pixels).save(png)
    # --xres is in pixels per millimetre: 1000 / MPP. vips writes it in pixels per centimetre.
    subprocess.run(["vips", "tiffsave", png, os.path.join(out, name + ".tif"), "--tile", "--pyramid", "--tile-width", "256",
                    "--tile-height", "256", "--compression", compression, "--Q", "90", "--xres", str(1000 / MPP),
                    "--yres", str(1000 / MPP)], check=True)
    if name != "exact":
        os.remove(png)


def one_class_slide(images, part):
    pixels = canvas(4 * 350 + 2 * MARGIN, 460 + 2 * MARGIN)
    for i, (path, half) in enumerate(images):
        pixels[MARGIN:MARGIN + 460, MARGIN + 350 * i:MARGIN + 350 * (i + 1)] = rgb(path)[:, 350 * half:350 * (half + 1)]
    return pixels


def rectangle(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


halves = [(p, h) for p in malignant for h in (0, 1)]
with open(os.path.join(out, "slides.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["slide", "label", "patient"])
    for i in range(4):
        save_slide(one_class_slide([(p, h) for p in benign[2 * i:2 * i + 2] for h in (0, 1)], i), f"slide_benign_{i + 1}")
        save_slide(one_class_slide(halves[2 * i:2 * i + 2] + halves[2 * i:2 * i + 2][::-1], i), f"slide_malignant_{i + 1}")
        w.writerow([f"slide_benign_{i + 1}.tif", "benign", "P1" if i < 2 else f"P{i}"])
        w.writerow([f"slide_malignant_{i + 1}.tif", "malignant", f"P{i + 4}"])

tiles = [["slide", "x", "y", "label"]]
with open(os.path.join(out, "mixed.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["slide", "patient"])
    for i in range(4):
        pixels = canvas(2 * 700 + 100 + 2 * MARGIN, 460 + 2 * MARGIN)
        pixels[MARGIN:MARGIN + 460, MARGIN:MARGIN + 700] = rgb(benign[i])
        pixels[MARGIN:MARGIN + 460, MARGIN + 800:MARGIN + 1500] = rgb(malignant[i])
        save_slide(pixels, f"mixed_{i + 1}")
        if i == 0:
            save_slide(pixels, "exact", "deflate")
        features = [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [rectangle(128, 128, 828, 588)]},
             "properties": {"objectType": "annotation", "classification": {"name": "benign", "color": [0, 200, 0]}}},
            {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[rectangle(928, 128, 1628, 588), rectangle(1178, 258, 1378, 458)]]},
             "properties": {"objectType": "annotation", "classification": {"name": "malignant", "color": [200, 0, 0]}}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [rectangle(0, 0, 1756, 716)]},
             "properties": {"objectType": "annotation"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [400, 300]},
             "properties": {"objectType": "annotation", "classification": {"name": "benign"}}},
        ]
        with open(os.path.join(out, f"mixed_{i + 1}.geojson"), "w") as g:
            json.dump({"type": "FeatureCollection", "features": features}, g)
        w.writerow([f"mixed_{i + 1}.tif", f"M{i + 1}"])
        for y in (150, 300, 450):
            for x in (150, 400, 650):
                tiles.append([f"mixed_{i + 1}.tif", x, y, "benign"])
                tiles.append([f"mixed_{i + 1}.tif", x + 800, y, "malignant"])
with open(os.path.join(out, "tiles.csv"), "w", newline="") as f:
    csv.writer(f).writerows(tiles)

Image.fromarray(canvas(1024, 768)).save(os.path.join(out, "blank.png"))
subprocess.run(["vips", "tiffsave", os.path.join(out, "blank.png"), os.path.join(out, "blank.tif"), "--tile", "--pyramid",
                "--compression", "jpeg", "--xres", "2000", "--yres", "2000"], check=True)
os.remove(os.path.join(out, "blank.png"))

import tifffile  # noqa: E402  (Debian: python3-tifffile)
level0 = np.ascontiguousarray(np.tile(rgb(benign[0]), (2, 2, 1)))
with tifffile.TiffWriter(os.path.join(out, "no_resolution.tif")) as tif:
    for level in (level0, level0[::2, ::2], level0[::4, ::4]):
        tif.write(np.ascontiguousarray(level), tile=(256, 256), photometric="rgb", resolutionunit=1)

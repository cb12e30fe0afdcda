"""Where a render decoder's error lies: the share a 64-px picture holds (which colour where) and the finer rest.

Reads the truth | decoder | enlargement grid that `sundae vqgan reconstruct --render-size SIZE --out GRID`
writes (tiles of SIZE px, 2-px gaps) and splits each tile's error into a low band (box-averaged over
SIZE/64-px blocks, enlarged back) and the rest. Prints the pooled PSNR of each tile kind and what it would be
with either band perfect. Needs numpy and pillow.
    python3 scripts/decoder_error_bands.py GRID [SIZE]
"""
import sys

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None
grid = np.asarray(Image.open(sys.argv[1]).convert("RGB"), dtype=np.float64) / 255
size = int(sys.argv[2]) if len(sys.argv) > 2 else 256
gap, factor = 2, size // 64
count = (grid.shape[0] + gap) // (size + gap)


def low_band(x):
    blocks = x.reshape(size // factor, factor, size // factor, factor, 3).mean(axis=(1, 3))
    return np.repeat(np.repeat(blocks, factor, 0), factor, 1)


totals = {kind: np.zeros(3) for kind in ("decoder", "enlargement")}  # all, low band, rest
for i in range(count):
    top = i * (size + gap)
    truth, *made = (grid[top:top + size, j * (size + gap):j * (size + gap) + size] for j in range(3))
    for kind, image in zip(totals, made):
        error = image - truth
        low = low_band(error)
        totals[kind] += [(error ** 2).mean(), (low ** 2).mean(), ((error - low) ** 2).mean()]


def decibels(mse):
    return -10 * np.log10(mse / count)


for kind, (whole, low, rest) in totals.items():
    print(f"{kind}: pooled PSNR {decibels(whole):.2f} dB over {count} tiles; {low / whole * 100:.0f} % of the "
          f"squared error in the 64-px band; with that band perfect {decibels(rest):.2f} dB, "
          f"with the rest perfect {decibels(low):.2f} dB")

"""Prints how two .npy arrays agree: share of equal entries (integers) or the largest absolute difference."""
import sys

import numpy as np

a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
if a.dtype.kind in "iu":
    print(f"{sys.argv[1]} vs {sys.argv[2]}: {100 * np.mean(a == b):.2f}% of {a.size} positions equal")
else:
    print(f"{sys.argv[1]} vs {sys.argv[2]}: max |difference| {np.abs(a - b).max():.2e}, mean {np.abs(a - b).mean():.2e}")

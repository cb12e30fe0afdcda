"""The timing protocol both PyTorch twins share (scripts/torch_prior.py, scripts/torch_vqgan.py), as
`sundae bench` times its own: one untimed pass, then `repeats` timed ones; one JSON line."""

import json
import time

import torch


def time_passes(run, repeats, batch, first=None):
    """Calls `run()` 1 + `repeats` times, hands the untimed first result to `first` (when given) and
    prints {"seconds": [...], "batch": B, "threads": T}."""
    seconds = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        out = run()
        if i == 0:
            if first is not None:
                first(out)
        else:
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "batch": batch, "threads": torch.get_num_threads()}))

"""What both PyTorch twins share (scripts/torch_prior.py, scripts/torch_vqgan.py): their common
arguments, and the timing protocol `sundae bench` uses for its own: one untimed pass, then `repeats`
timed ones; one JSON line."""

import argparse
import json
import time

import torch


def arguments(output_flag, output_help, tokens_required=True):
    """BUNDLE --tokens T.npy [OUTPUT_FLAG OUT.npy] [--repeats N] [--threads N]; the caller adds its own."""
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--tokens", required=tokens_required)
    ap.add_argument(output_flag, help=output_help)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    return ap


def parse(ap):
    """The parsed arguments, with torch's thread count set when --threads asks."""
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    return a


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

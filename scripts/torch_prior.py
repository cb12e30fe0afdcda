"""A PyTorch twin of sundae's prior (the reference's 2D hourglass transformer as SPEC.md 4 and
DECISIONS.md Q1-Q3 describe it), written from the documents, not from the Rust code, loading a
bundle's prior.toml and prior.safetensors by their reference names. For scripts/bench-vs-torch.sh:
the same weights and tokens through both, the logits compared and the forward timed; or, with
--train, SUNDAE training steps on those tokens as clean data (SPEC.md 2: per-grid corruption rate
~ U(0, 1), T unrolled passes with detached samples between them, the mean cross-entropy, AdamW with
the gradient norm clipped), timed as `sundae bench train` times its own.

  python scripts/torch_prior.py BUNDLE --tokens T.npy [--logits OUT.npy] [--repeats N] [--threads N]
  python scripts/torch_prior.py BUNDLE --tokens T.npy --train [--unroll 2] [--repeats N]

Prints one JSON line: {"seconds": [...], "batch": B}.
"""

import math
import tomllib

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch_timing import arguments, parse, time_passes


def linear(w, prefix, x, bias=True):
    return F.linear(x, w[prefix + ".weight"], w.get(prefix + ".bias") if bias else None)


def layer_norm(w, prefix, x):
    return F.layer_norm(x, x.shape[-1:], w[prefix + ".weight"], w[prefix + ".bias"], 1e-5)


class Rotary2d:
    """cos/sin [N, rot_dim]: rot_dim = min(dim_head, 64); half the channels turn with the row, half
    with the column; frequencies pi * linspace(1, side / 2, rot_dim / 4) for the training side;
    positions linspace(-1, 1) over the training grid, extended (not squeezed) on larger grids."""

    def __init__(self, dim_head, height, width, train_height, train_width):
        self.rot_dim = min(dim_head, 64)
        count = self.rot_dim // 4
        top = max(max(train_height, train_width) / 2.0, 1.0)
        t = torch.linspace(0, 1, count, dtype=torch.float64) if count > 1 else torch.zeros(1, dtype=torch.float64)
        freqs = math.pi * (1.0 + t * (top - 1.0))

        def pos(index, train_len):
            return torch.zeros_like(index) if train_len <= 1 else -1.0 + 2.0 * index / (train_len - 1)

        rows = pos(torch.arange(height, dtype=torch.float64), train_height)
        cols = pos(torch.arange(width, dtype=torch.float64), train_width)
        r = rows[:, None, None] * freqs[None, None, :]  # [H, 1, F]
        c = cols[None, :, None] * freqs[None, None, :]  # [1, W, F]
        r = r.expand(height, width, count)
        c = c.expand(height, width, count)
        angles = torch.cat([r, c], dim=-1).reshape(height * width, 2 * count)
        angles = angles.repeat_interleave(2, dim=-1)  # each frequency covers a pair of channels
        self.cos = angles.cos().float()
        self.sin = angles.sin().float()

    def apply(self, x):  # [B, heads, N, dim_head]
        d = self.rot_dim
        rot, rest = x[..., :d], x[..., d:]
        even, odd = rot[..., 0::2], rot[..., 1::2]
        turned = torch.stack([-odd, even], dim=-1).flatten(-2)
        out = rot * self.cos + turned * self.sin
        return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out


class Prior:
    def __init__(self, bundle):
        with open(f"{bundle}/prior.toml", "rb") as f:
            self.c = tomllib.load(f)
        self.w = {k: v.float() for k, v in load_file(f"{bundle}/prior.safetensors").items()}
        self.s = int(round(math.sqrt(self.c.get("shorten_factor", 4))))
        self.dim_head = self.c.get("dim_head", 64)
        self.heads = self.c["heads"]
        self.levels = len(self.c["depth"]) // 2

    def level_prefix(self, i):
        # The reference's one-level hourglass has no `levels.0.`; nested levels keep their index.
        return "transformer." if i == 0 else f"transformer.levels.{i}."

    def attention(self, p, x, context, rotary):
        b, n, _ = x.shape
        h, dh = self.heads, self.dim_head
        inner = h * dh
        q = linear(self.w, p + ".to_q", x, bias=False)
        kv = linear(self.w, p + ".to_kv", x if context is None else context, bias=False)
        k, v = kv[..., :inner], kv[..., inner:]
        split = lambda t: t.reshape(t.shape[0], t.shape[1], h, dh).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        if rotary is not None:
            q, k = rotary.apply(q), rotary.apply(k)
        scores = (q * dh**-0.5) @ k.transpose(-1, -2)
        out = scores.softmax(-1) @ v
        return linear(self.w, p + ".to_out", out.transpose(1, 2).reshape(b, n, inner))

    def stack(self, p, x, context=None, rotary=None):
        i = 0
        while f"{p}.layers.{i}.0.norm.weight" in self.w:
            lp = f"{p}.layers.{i}"
            x = x + self.attention(lp + ".0.fn", layer_norm(self.w, lp + ".0.norm", x), context, rotary)
            hdn = F.gelu(linear(self.w, lp + ".1.fn.0", layer_norm(self.w, lp + ".1.norm", x)))
            x = x + linear(self.w, lp + ".1.fn.3", hdn)
            i += 1
        return x

    def to_blocks(self, x, height, width):
        b, _, d = x.shape
        s = self.s
        return (
            x.reshape(b, height // s, s, width // s, s, d)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(b, (height // s) * (width // s), s * s, d)
        )

    def from_blocks(self, x, height, width):
        b, _, _, d = x.shape
        s = self.s
        return (
            x.reshape(b, height // s, width // s, s, s, d)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(b, height * width, d)
        )

    @torch.no_grad()
    def forward(self, tokens):  # [B, H, W] int64
        return self.logits(tokens)

    def logits(self, tokens):  # [B, H, W] int64, with gradients when the weights want them
        b, height, width = tokens.shape
        x = F.embedding(tokens.reshape(b, -1), self.w["token_emb.weight"])
        i = 0
        while f"label_emb.{i}.weight" in self.w:
            table = self.w[f"label_emb.{i}.weight"]
            x = x + table[-1]  # no label: each set's null value
            i += 1
        s, k = self.s, self.s * self.s
        grid = (height, width, self.c["grid_height"], self.c["grid_width"])
        way_down = []
        for lvl in range(self.levels):
            p = self.level_prefix(lvl)
            h, w_, th, tw = grid
            rotary = Rotary2d(self.dim_head, h, w_, th, tw)
            x = self.stack(p + "pre_transformer", x, rotary=rotary)
            d = x.shape[-1]
            blocks = self.to_blocks(x, h, w_)
            m = blocks.shape[1]
            short = linear(self.w, p + "downsample.proj", blocks.transpose(2, 3).reshape(b, m, d * k))
            short = self.stack(
                p + "attn_resampling_pre_valley", short.reshape(b * m, 1, d), context=blocks.reshape(b * m, k, d)
            ).reshape(b, m, d)
            way_down.append((x, grid, rotary))
            grid = (h // s, w_ // s, max(th // s, 1), max(tw // s, 1))
            x = short
        h, w_, th, tw = grid
        x = self.stack("transformer.valley_transformer", x, rotary=Rotary2d(self.dim_head, h, w_, th, tw))
        for lvl in reversed(range(self.levels)):
            p = self.level_prefix(lvl)
            residual, (h, w_, _, _), rotary = way_down.pop()
            _, m, d = x.shape
            up = linear(self.w, p + "upsample.proj", x).reshape(b, m, d, k).transpose(2, 3)
            up = self.from_blocks(up, h, w_) + residual
            queries = self.to_blocks(up, h, w_).reshape(b * m, k, d)
            res = self.stack(p + "attn_resampling_post_valley", queries, context=x.reshape(b * m, 1, d))
            x = self.stack(p + "post_transformer", self.from_blocks(res.reshape(b, m, k, d), h, w_), rotary=rotary)
        x = layer_norm(self.w, "transformer.norm_out", x)
        return linear(self.w, "to_logits", x)


def train_step(prior, optimizer, clean, unroll, clip):
    """One SUNDAE step on `clean` [B, H, W]: corrupt, unroll, mean cross-entropy, AdamW."""
    vocab = prior.c["vocab_size"]
    b = clean.shape[0]
    rate = torch.rand(b, 1, 1)
    x = torch.where(torch.rand(clean.shape) < rate, torch.randint(0, vocab, clean.shape), clean)
    losses = []
    for t in range(unroll):
        logits = prior.logits(x)
        losses.append(F.cross_entropy(logits.reshape(-1, vocab), clean.reshape(-1)))
        if t + 1 < unroll:
            with torch.no_grad():
                x = torch.distributions.Categorical(logits=logits).sample().reshape(clean.shape)
    loss = torch.stack(losses).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(prior.w.values()), clip)
    optimizer.step()
    return float(loss.detach())


def main():
    ap = arguments("--logits", "write the first pass's logits here (float32 .npy)")
    ap.add_argument("--train", action="store_true", help="time training steps instead of the forward")
    ap.add_argument("--unroll", type=int, default=2)
    ap.add_argument("--learning-rate", type=float, default=5e-4)
    ap.add_argument("--clip", type=float, default=1.0)
    a = parse(ap)
    prior = Prior(a.bundle)
    tokens = torch.from_numpy(np.load(a.tokens).astype(np.int64))
    if a.train:
        torch.manual_seed(0)
        for v in prior.w.values():
            v.requires_grad_(True)
        # The reference's AdamW (SPEC.md 3.4): betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
        optimizer = torch.optim.AdamW(list(prior.w.values()), lr=a.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        time_passes(lambda: train_step(prior, optimizer, tokens, a.unroll, a.clip), a.repeats, int(tokens.shape[0]))
        return
    save = (lambda out: np.save(a.logits, out.numpy())) if a.logits else None
    time_passes(lambda: prior.forward(tokens), a.repeats, int(tokens.shape[0]), save)


if __name__ == "__main__":
    main()

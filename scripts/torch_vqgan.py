"""A PyTorch twin of sundae's VQ-GAN decoder (taming-transformers' Decoder as SPEC.md 2.1 describes it,
with DECISIONS.md's `norm_groups`), written from the documents, not from the Rust code, loading a bundle's
vqgan.toml and vqgan.safetensors by their reference names. For scripts/bench-vs-torch.sh: the same
weights and token grids through both, the images compared and the decode timed.

  python scripts/torch_vqgan.py BUNDLE --tokens T.npy [--images OUT.npy] [--repeats N] [--threads N]

Decodes: z_q = codebook[tokens] (channels first), post_quant_conv, Decoder, clamped to [-1, 1] (as
`sundae vqgan decode --out X.npy` writes images). Prints one JSON line: {"seconds": [...], "batch": B}.
"""

import tomllib

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch_timing import arguments, parse, time_passes


class Decoder:
    def __init__(self, bundle):
        with open(f"{bundle}/vqgan.toml", "rb") as f:
            self.c = tomllib.load(f)
        # f16 bundles are computed in f32, as sundae computes them on the CPU.
        self.w = {k: v.float() for k, v in load_file(f"{bundle}/vqgan.safetensors").items()}
        self.groups = self.c.get("norm_groups", 32)

    def conv(self, prefix, x, padding):
        return F.conv2d(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"], padding=padding)

    def norm(self, prefix, x):
        return F.group_norm(x, self.groups, self.w[prefix + ".weight"], self.w[prefix + ".bias"], eps=1e-6)

    def resnet(self, p, x):
        h = self.conv(p + ".conv1", F.silu(self.norm(p + ".norm1", x)), 1)
        h = self.conv(p + ".conv2", F.silu(self.norm(p + ".norm2", h)), 1)
        skip = self.conv(p + ".nin_shortcut", x, 0) if p + ".nin_shortcut.weight" in self.w else x
        return skip + h

    def attn(self, p, x):
        b, c, h, w = x.shape
        hn = self.norm(p + ".norm", x)
        q = self.conv(p + ".q", hn, 0).reshape(b, c, h * w).transpose(1, 2)
        k = self.conv(p + ".k", hn, 0).reshape(b, c, h * w)
        v = self.conv(p + ".v", hn, 0).reshape(b, c, h * w)
        weights = torch.softmax(torch.bmm(q, k) * c**-0.5, dim=2)  # [b, i, j]
        out = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.conv(p + ".proj_out", out, 0)

    @torch.no_grad()
    def decode(self, tokens):
        c = self.c
        codebook = self.w["quantize.embedding.weight"]
        z = codebook[tokens].permute(0, 3, 1, 2)
        z = self.conv("post_quant_conv", z, 0)
        levels = len(c["ch_mult"])
        res = c["resolution"] // 2 ** (levels - 1)
        x = self.conv("decoder.conv_in", z, 1)
        x = self.resnet("decoder.mid.block_1", x)
        x = self.attn("decoder.mid.attn_1", x)
        x = self.resnet("decoder.mid.block_2", x)
        for i in reversed(range(levels)):
            for j in range(c["num_res_blocks"] + 1):
                x = self.resnet(f"decoder.up.{i}.block.{j}", x)
                if res in c["attn_resolutions"]:
                    x = self.attn(f"decoder.up.{i}.attn.{j}", x)
            if i > 0:
                x = self.conv(f"decoder.up.{i}.upsample.conv", F.interpolate(x, scale_factor=2.0, mode="nearest"), 1)
                res *= 2
        x = F.silu(self.norm("decoder.norm_out", x))
        return self.conv("decoder.conv_out", x, 1).clamp(-1.0, 1.0)


def main():
    a = parse(arguments("--images", "write the first pass's images here (float32 .npy)"))
    decoder = Decoder(a.bundle)
    tokens = torch.from_numpy(np.load(a.tokens).astype(np.int64))
    save = (lambda out: np.save(a.images, out.numpy())) if a.images else None
    time_passes(lambda: decoder.decode(tokens), a.repeats, int(tokens.shape[0]), save)

if __name__ == "__main__":
    main()

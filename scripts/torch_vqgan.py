"""A PyTorch twin of sundae's VQ-GAN (taming-transformers' Encoder, VectorQuantizer2 and Decoder as
SPEC.md 2.1 describes them, with DECISIONS.md's `norm_groups`), written from the documents, not from
the Rust code, loading a bundle's vqgan.toml and vqgan.safetensors by their reference names. For
scripts/bench-vs-torch.sh: the same weights and token grids through both, the images compared and the
decode timed; and VQ-GAN training steps timed as `sundae bench vqgan-train` times its own.

  python scripts/torch_vqgan.py BUNDLE --tokens T.npy [--images OUT.npy] [--repeats N] [--threads N]
  python scripts/torch_vqgan.py BUNDLE --train [--batch 8] [--repeats N] [--threads N]

Decodes: z_q = codebook[tokens] (channels first), post_quant_conv, Decoder, clamped to [-1, 1] (as
`sundae vqgan decode --out X.npy` writes images). Trains (SPEC.md 2.3, the emoji configuration, whose
discriminator and perceptual term are off): random images in [-1, 1], encode, quant_conv, nearest
code with the straight-through estimator and the legacy VQ loss (beta 0.25 on the codebook term), the
decode unclamped, mean L1 plus the VQ loss, Adam (betas 0.5, 0.9, eps 1e-8, lr 5e-4), codebook usage
counted. Prints one JSON line: {"seconds": [...], "batch": B}.
"""

import tomllib

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch_timing import arguments, parse, time_passes


class VqGan:
    def __init__(self, bundle, trainable=False):
        with open(f"{bundle}/vqgan.toml", "rb") as f:
            self.c = tomllib.load(f)
        # f16 bundles are computed in f32, as sundae computes them on the CPU.
        self.w = {k: v.float().requires_grad_(trainable) for k, v in load_file(f"{bundle}/vqgan.safetensors").items()}
        self.groups = self.c.get("norm_groups", 32)

    def conv(self, prefix, x, padding, stride=1):
        return F.conv2d(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"], padding=padding, stride=stride)

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

    def mid(self, p, x):
        return self.resnet(p + ".block_2", self.attn(p + ".attn_1", self.resnet(p + ".block_1", x)))

    def encode(self, x):
        """Images [B, 3, H, W] -> quant_conv's latents [B, embed_dim, h, w]."""
        c = self.c
        levels = len(c["ch_mult"])
        res = c["resolution"]
        x = self.conv("encoder.conv_in", x, 1)
        for i in range(levels):
            for j in range(c["num_res_blocks"]):
                x = self.resnet(f"encoder.down.{i}.block.{j}", x)
                if res in c["attn_resolutions"]:
                    x = self.attn(f"encoder.down.{i}.attn.{j}", x)
            if i + 1 < levels:
                # taming's Downsample: pad right and bottom by one, then a stride-2 3x3 convolution.
                x = self.conv(f"encoder.down.{i}.downsample.conv", F.pad(x, (0, 1, 0, 1)), 0, stride=2)
                res //= 2
        x = self.mid("encoder.mid", x)
        x = self.conv("encoder.conv_out", F.silu(self.norm("encoder.norm_out", x)), 1)
        return self.conv("quant_conv", x, 0)

    def decode_latents(self, z):
        """Codebook latents [B, embed_dim, h, w] -> unclamped images."""
        c = self.c
        levels = len(c["ch_mult"])
        res = c["resolution"] // 2 ** (levels - 1)
        x = self.conv("decoder.conv_in", self.conv("post_quant_conv", z, 0), 1)
        x = self.mid("decoder.mid", x)
        for i in reversed(range(levels)):
            for j in range(c["num_res_blocks"] + 1):
                x = self.resnet(f"decoder.up.{i}.block.{j}", x)
                if res in c["attn_resolutions"]:
                    x = self.attn(f"decoder.up.{i}.attn.{j}", x)
            if i > 0:
                x = self.conv(f"decoder.up.{i}.upsample.conv", F.interpolate(x, scale_factor=2.0, mode="nearest"), 1)
                res *= 2
        x = F.silu(self.norm("decoder.norm_out", x))
        return self.conv("decoder.conv_out", x, 1)

    @torch.no_grad()
    def decode(self, tokens):
        z = self.w["quantize.embedding.weight"][tokens].permute(0, 3, 1, 2)
        return self.decode_latents(z).clamp(-1.0, 1.0)

    def quantize(self, z, beta=0.25):
        """VectorQuantizer2, legacy loss: straight-through latents, the loss, the indices."""
        b, e, h, w = z.shape
        codes = self.w["quantize.embedding.weight"]
        flat = z.permute(0, 2, 3, 1).reshape(-1, e)
        distances = (codes**2).sum(1)[None, :] - 2.0 * flat.detach() @ codes.detach().t()
        indices = distances.argmin(1)
        chosen = codes[indices]
        loss = ((chosen.detach() - flat) ** 2).mean() + beta * ((chosen - flat.detach()) ** 2).mean()
        straight = flat + (chosen - flat).detach()
        return straight.reshape(b, h, w, e).permute(0, 3, 1, 2), loss, indices


def train_step(model, optimizer, images, usage):
    z_q, vq_loss, indices = model.quantize(model.encode(images))
    xrec = model.decode_latents(z_q)
    loss = (images - xrec).abs().mean() + vq_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    usage += torch.bincount(indices, minlength=usage.numel())
    return float(loss.detach())


def main():
    ap = arguments("--images", "write the first pass's images here (float32 .npy)", tokens_required=False)
    ap.add_argument("--train", action="store_true", help="time training steps instead of the decode")
    ap.add_argument("--batch", type=int, default=8, help="images per training step")
    ap.add_argument("--learning-rate", type=float, default=5e-4)
    a = parse(ap)
    if a.train:
        model = VqGan(a.bundle, trainable=True)
        side = model.c["resolution"]
        images = torch.rand(a.batch, 3, side, side, generator=torch.Generator().manual_seed(7)) * 2.0 - 1.0
        optimizer = torch.optim.Adam(list(model.w.values()), lr=a.learning_rate, betas=(0.5, 0.9), eps=1e-8)
        usage = torch.zeros(model.c["n_embed"], dtype=torch.int64)
        time_passes(lambda: train_step(model, optimizer, images, usage), a.repeats, a.batch)
        return
    if a.tokens is None:
        ap.error("--tokens is required to decode")
    model = VqGan(a.bundle)
    tokens = torch.from_numpy(np.load(a.tokens).astype(np.int64))
    save = (lambda out: np.save(a.images, out.numpy())) if a.images else None
    time_passes(lambda: model.decode(tokens), a.repeats, int(tokens.shape[0]), save)


if __name__ == "__main__":
    main()

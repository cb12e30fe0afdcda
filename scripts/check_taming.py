"""End-to-end check against taming-transformers' own code, as a new user would run it.

taming's VQModel (f16 configuration, 256x256, 1024 codes) is built and saved as a Lightning checkpoint by
taming's and Lightning's code; the script then writes images, taming's token grids and taming's decodings.
scripts/check-taming.sh imports that checkpoint with `sundae vqgan import` and compares.

The weights are random (no checkpoint can be downloaded here) except the codebook, which is set to encoder
outputs of real images, as training would leave it; otherwise every code sits near zero and nearest-code
choices become near-ties that say nothing about the implementation.

Usage: python check_taming.py WORKDIR EMOJI_PNG...
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
from taming_shim import install_shim, instantiate_from_config  # noqa: E402

install_shim()
import pytorch_lightning as pl  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

F16 = """
model:
  base_learning_rate: 4.5e-6
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 256
    n_embed: 1024
    ddconfig:
      double_z: False
      z_channels: 256
      resolution: 256
      in_channels: 3
      out_ch: 3
      ch: 128
      ch_mult: [1, 1, 2, 2, 4]
      num_res_blocks: 2
      attn_resolutions: [16]
      dropout: 0.0
    lossconfig:
      target: taming.modules.losses.vqperceptual.DummyLoss
"""


def load_rgb(path):
    """Emoji on white, upscaled to 256x256 by PIL, saved as plain RGB so both sides read identical pixels."""
    rgba = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB").resize((256, 256), Image.BICUBIC)


def main():
    work, pngs = sys.argv[1], sys.argv[2:]
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    model = instantiate_from_config(OmegaConf.create(F16).model).eval()
    names = []
    for i, path in enumerate(pngs):
        name = os.path.join(work, f"image{i}.png")
        load_rgb(path).save(name)
        names.append(name)
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(n), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
                     for n in names])
    with torch.no_grad():
        h = model.quant_conv(model.encoder(x))
        flat = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
        pick = torch.randperm(flat.shape[0])[:1024]
        model.quantize.embedding.weight.copy_(flat[pick] + 0.01 * torch.randn(1024, h.shape[1]))
        _, _, (_, _, idx) = model.quantize(h)
        idx = idx.reshape(x.shape[0], 16, 16)
        # As the reference's decode_vqgan does: codebook rows, then post_quant_conv and the decoder.
        quant = model.quantize.get_codebook_entry(idx.reshape(-1), shape=(x.shape[0], 16, 16, 256))
        decoded = model.decode(quant).clamp(-1, 1)
    np.save(os.path.join(work, "taming_indices.npy"), idx.numpy().astype(np.int64))
    np.save(os.path.join(work, "taming_decoded.npy"), decoded.numpy().astype(np.float32))
    open(os.path.join(work, "f16.yaml"), "w").write(F16.lstrip())
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    trainer.strategy.connect(model)
    trainer.save_checkpoint(os.path.join(work, "last.ckpt"))


if __name__ == "__main__":
    main()

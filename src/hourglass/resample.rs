//! Linear 2D down/upsampling by s x s blocks (SPEC.md 4.3 steps 2 and 5), and the block grouping that
//! attention resampling shares with them (DECISIONS.md Q1).

use super::layers::linear_rows;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// `[B, H*W, D]` (row-major grid) -> `[B, (H/s)*(W/s), s*s, D]`: each output row is one s x s block,
/// blocks in row-major order, tokens inside a block row-major.
pub fn to_blocks(x: Tensor<3>, height: usize, width: usize, s: usize) -> Tensor<4> {
    let [b, _, d] = x.dims();
    let (hs, ws) = (height / s, width / s);
    x.reshape([b, hs, s, ws, s, d])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, hs * ws, s * s, d])
}

/// The inverse of [`to_blocks`].
pub fn from_blocks(x: Tensor<4>, height: usize, width: usize, s: usize) -> Tensor<3> {
    let [b, _, _, d] = x.dims();
    let (hs, ws) = (height / s, width / s);
    x.reshape([b, hs, ws, s, s, d])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, height * width, d])
}

/// One linear map applied per block.
#[derive(Module, Debug)]
pub struct Projection {
    pub proj: Linear,
}

impl Projection {
    pub fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            proj: LinearConfig::new(input, output).init(device),
        }
    }

    /// Blocks `[B, M, k, D]` -> `[B, M, D]`; each block flattened in (d, sh, sw) order, d slowest.
    pub fn down(&self, blocks: Tensor<4>) -> Tensor<3> {
        let [b, m, k, d] = blocks.dims();
        linear_rows(&self.proj, blocks.swap_dims(2, 3).reshape([b, m, d * k]))
    }

    /// `[B, M, D]` -> blocks `[B, M, k, D]`, splitting each output as (d, sh, sw).
    pub fn up(&self, x: Tensor<3>, k: usize) -> Tensor<4> {
        let [b, m, d] = x.dims();
        linear_rows(&self.proj, x)
            .reshape([b, m, d, k])
            .swap_dims(2, 3)
    }
}

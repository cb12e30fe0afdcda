//! Pre-norm transformer layers (SPEC.md 4.2): non-causal multi-head attention (optionally over a
//! separate context, for attention resampling) and a GELU feed-forward.

use super::rotary::Rotary2d;
use crate::cpu::{gelu, layer_norm, scaled_softmax};
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// `linear` over every row of `x` `[B, N, D]` as one `[B*N, D]` matrix product. burn keeps a
/// batched product when N fills its row tiles (the full-resolution levels' N = 64), and the CPU
/// backend then repacks the weight for every batch element in a single-threaded product each;
/// one tall product packs it once and splits across the cores (on the CPU, `crate::cpu::linear`).
pub fn linear_rows(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, n, d] = x.dims();
    let out = crate::cpu::linear(linear, x.reshape([b * n, d]));
    let width = out.dims()[1];
    out.reshape([b, n, width])
}

#[derive(Module, Debug)]
pub struct Attention {
    pub to_q: Linear,
    /// Keys and values in one matrix: first half keys, second half values.
    pub to_kv: Linear,
    pub to_out: Linear,
    pub heads: usize,
    pub dim_head: usize,
}

impl Attention {
    pub fn new(dim: usize, heads: usize, dim_head: usize, device: &Device) -> Self {
        let inner = heads * dim_head;
        Self {
            to_q: LinearConfig::new(dim, inner).with_bias(false).init(device),
            to_kv: LinearConfig::new(dim, 2 * inner)
                .with_bias(false)
                .init(device),
            to_out: LinearConfig::new(inner, dim).init(device),
            heads,
            dim_head,
        }
    }

    /// `[B, N, k * dim_head]` rows as `[B, k, N, dim_head]` heads (a view).
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, n, width] = x.dims();
        x.reshape([b, n, width / self.dim_head, self.dim_head])
            .swap_dims(1, 2)
    }

    /// `x` `[B, N, D]` attends to `context` `[B, M, D]` (itself when None); rotary only without context.
    pub fn forward(
        &self,
        x: Tensor<3>,
        context: Option<Tensor<3>>,
        rotary: Option<&Rotary2d>,
    ) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let inner = self.heads * self.dim_head;
        let q = self.split_heads(linear_rows(&self.to_q, x.clone()));
        // Keys and values as 2 * heads heads of one view, then split: narrowing the rows first
        // would make burn copy both halves to split their heads.
        let kv = self.split_heads(linear_rows(&self.to_kv, context.unwrap_or(x)));
        let k = kv.clone().narrow(1, 0, self.heads);
        let v = kv.narrow(1, self.heads, self.heads);
        let (q, k) = match rotary {
            Some(rotary) => (rotary.apply(q), rotary.apply(k)),
            None => (q, k),
        };
        let scale = (self.dim_head as f32).powf(-0.5);
        let out = if crate::cpu::on_cpu(&q) {
            // One operation that reads the heads in place and writes merged rows.
            crate::cpu::attention(q, k, v, scale)
        } else {
            let weights = scaled_softmax(q.matmul(k.swap_dims(2, 3)), scale);
            weights.matmul(v).swap_dims(1, 2).reshape([b, n, inner])
        };
        linear_rows(&self.to_out, out)
    }
}

#[derive(Module, Debug)]
pub struct FeedForward {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl FeedForward {
    pub fn new(dim: usize, mult: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(dim, dim * mult).init(device),
            fc2: LinearConfig::new(dim * mult, dim).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear_rows(&self.fc2, gelu(linear_rows(&self.fc1, x)))
    }
}

/// x = x + Attn(LN(x), ctx); x = x + FF(LN(x)). The context is not normalised.
#[derive(Module, Debug)]
pub struct Layer {
    pub attn_norm: LayerNorm,
    pub attn: Attention,
    pub ff_norm: LayerNorm,
    pub ff: FeedForward,
}

impl Layer {
    pub fn new(dim: usize, heads: usize, dim_head: usize, ff_mult: usize, device: &Device) -> Self {
        Self {
            attn_norm: LayerNormConfig::new(dim).init(device),
            attn: Attention::new(dim, heads, dim_head, device),
            ff_norm: LayerNormConfig::new(dim).init(device),
            ff: FeedForward::new(dim, ff_mult, device),
        }
    }

    pub fn forward(
        &self,
        x: Tensor<3>,
        context: Option<Tensor<3>>,
        rotary: Option<&Rotary2d>,
    ) -> Tensor<3> {
        let x = x.clone()
            + self
                .attn
                .forward(layer_norm(&self.attn_norm, x), context, rotary);
        x.clone() + self.ff.forward(layer_norm(&self.ff_norm, x))
    }
}

/// A stack of layers (no final norm).
#[derive(Module, Debug)]
pub struct Transformer {
    pub layers: Vec<Layer>,
}

impl Transformer {
    pub fn new(
        depth: usize,
        dim: usize,
        heads: usize,
        dim_head: usize,
        ff_mult: usize,
        device: &Device,
    ) -> Self {
        Self {
            layers: (0..depth)
                .map(|_| Layer::new(dim, heads, dim_head, ff_mult, device))
                .collect(),
        }
    }

    pub fn forward(
        &self,
        mut x: Tensor<3>,
        context: Option<Tensor<3>>,
        rotary: Option<&Rotary2d>,
    ) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward(x, context.clone(), rotary);
        }
        x
    }
}

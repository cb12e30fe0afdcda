//! The VQ-GAN training losses (SPEC.md 2.3): reconstruction, hinge GAN, and the adaptive weight
//! that balances them.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d_weight_backward;
use burn::tensor::ops::ConvOptions;
use serde::{Deserialize, Serialize};

/// Pixel reconstruction distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Reconstruction {
    #[default]
    L1,
    L2,
}

/// Per-pixel reconstruction loss `[B, 3, H, W]` (mean taken by the caller with any other terms).
pub fn reconstruction(kind: Reconstruction, x: Tensor<4>, xrec: Tensor<4>) -> Tensor<4> {
    let diff = x - xrec;
    match kind {
        Reconstruction::L1 => diff.abs(),
        Reconstruction::L2 => diff.square(),
    }
}

/// Hinge loss of the discriminator: 0.5 (mean relu(1 - D(x)) + mean relu(1 + D(x̂))).
pub fn hinge_discriminator(logits_real: Tensor<4>, logits_fake: Tensor<4>) -> Tensor<1> {
    let real = relu(logits_real.neg().add_scalar(1.0)).mean();
    let fake = relu(logits_fake.add_scalar(1.0)).mean();
    (real + fake).mul_scalar(0.5)
}

/// Generator term: -mean D(x̂).
pub fn generator(logits_fake: Tensor<4>) -> Tensor<1> {
    logits_fake.mean().neg()
}

/// Gradient of a loss with respect to the decoder's last (3x3, padding 1) convolution weight,
/// from that layer's input and the loss's gradient at its output.
pub fn last_layer_gradient(
    features: Tensor<4>,
    weight: Tensor<4>,
    output_grad: Tensor<4>,
) -> Tensor<4> {
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    conv2d_weight_backward(features, weight, output_grad, options)
}

/// Taming's adaptive weight: |∇nll| / (|∇g| + 1e-4), clamped to [0, 1e4], times `disc_weight`.
pub fn adaptive_weight(nll_grad: Tensor<4>, g_grad: Tensor<4>, disc_weight: f64) -> f64 {
    let norm = |t: Tensor<4>| t.square().sum().sqrt().into_scalar::<f64>();
    let weight = norm(nll_grad) / (norm(g_grad) + 1e-4);
    weight.clamp(0.0, 1e4) * disc_weight
}

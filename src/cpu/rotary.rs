//! The rotary embedding's rotation of channel pairs, one parallel pass: (x0, x1) -> (x0 cos0 +
//! x1 ssin0, x1 cos1 + x0 ssin1) over the first `rot_dim` channels, with the signed sines
//! (-sin, sin) of `crate::hourglass::rotary`; the other channels pass through. The gradient is
//! the rotation back (the sines negated), one more pass.

use burn::tensor::Tensor;
use rayon::prelude::*;

/// Rotates `x` `[B, heads, N, dim_head]` by `cos` and `signed_sin` `[N, rot_dim]` (an f32 tensor on
/// the CPU device, with or without autodiff; see `super::on_cpu`).
pub fn rotate_pairs(x: Tensor<4>, cos: Tensor<2>, signed_sin: Tensor<2>) -> Tensor<4> {
    super::extension::rotate_pairs(x, cos, signed_sin)
}

/// Rotates every row of `x` (`rows` of `d` channels, position `row % n` of `n`) by `cos` and
/// `signed_sin` `[n, rot_dim]`. With the sines negated, the inverse rotation: the backward pass.
pub fn rotate(
    x: &[f32],
    n: usize,
    d: usize,
    cos: &[f32],
    signed_sin: &[f32],
    rot_dim: usize,
) -> Vec<f32> {
    assert!(d.is_multiple_of(2) && rot_dim.is_multiple_of(2) && rot_dim <= d);
    // Each value from itself and its pair's other half (index ^ 1: rows start at even indices).
    (0..x.len())
        .into_par_iter()
        .with_min_len(1 << 14)
        .map(|i| {
            let channel = i % d;
            if channel >= rot_dim {
                return x[i];
            }
            let table = (i / d % n) * rot_dim + channel;
            x[i] * cos[table] + x[i ^ 1] * signed_sin[table]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::hourglass::rotary::Rotary2d;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn rotation_and_its_gradient_equal_burns_ops() {
        // dim_head 96 rotates its first 64 channels and passes 32 through; `apply` takes the
        // kernel on the CPU, `apply_with_ops` burn's ops (the path of other devices).
        let (heads, dim_head, height, width) = (3, 96, 4, 5);
        let device = crate::device::cpu().autodiff();
        let rotary = Rotary2d::new(dim_head, height, width, height, width, &device);
        let shape = [2, height * width, heads, dim_head];
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).swap_dims(1, 2); // not contiguous, as the attention's heads are
        let w = Tensor::<4>::random(
            [2, heads, height * width, dim_head],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                rotary.apply(x.clone())
            } else {
                rotary.apply_with_ops(x.clone())
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            (y.inner(), x.grad(&grads).unwrap())
        };
        let (ours, theirs) = (run(true), run(false));
        let d = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
        assert!(d(ours.0.clone(), theirs.0) < 1e-6, "rotation");
        assert!(d(ours.1, theirs.1) < 1e-6, "gradient");
        // Without autodiff, the same kernel.
        let plain = x.clone().inner();
        let rotary_plain = Rotary2d::new(dim_head, height, width, height, width, &plain.device());
        assert!(
            d(rotary_plain.apply(plain.clone()), ours.0.clone()) < 1e-6,
            "plain device"
        );
        // And it does rotate: the rotated channels change, the rest do not.
        let moved: f32 = (ours.0.clone() - plain.clone())
            .narrow(3, 0, 64)
            .abs()
            .max()
            .into_scalar();
        let kept: f32 = (ours.0 - plain).narrow(3, 64, 32).abs().max().into_scalar();
        assert!(moved > 0.1 && kept == 0.0, "moved {moved}, kept {kept}");
    }
}

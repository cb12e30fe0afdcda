//! GELU, `0.5 x (1 + erf(x / sqrt 2))` (the exact form, as burn's and PyTorch's default), in
//! parallel, with erf by Abramowitz and Stegun 7.1.26 (absolute error at most 1.5e-7), and its
//! gradient for the backward pass.

use super::exp::exp;
use burn::tensor::Tensor;
use multiversion::multiversion;
use rayon::prelude::*;
use std::f32::consts::FRAC_1_SQRT_2;
use std::mem::MaybeUninit;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// 1 / sqrt(2 pi), the normal density's scale.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `burn::tensor::activation::gelu(x)`, with the hand-written backward pass of `gelu_grad` where
/// gradients are tracked (`super::extension`).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !super::on_cpu(&x) {
        return burn::tensor::activation::gelu(x);
    }
    super::extension::gelu(x)
}

/// GELU of every value.
pub fn gelu_values(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    out.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| gelu_into(x, out));
    // SAFETY: every chunk of the output was written by `gelu_into`.
    unsafe { out.set_len(x.len()) };
    out
}

#[multiversion(targets = "simd")]
fn gelu_into(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(0.5 * v * (1.0 + erf(v * FRAC_1_SQRT_2)));
    }
}

/// The gradient through GELU: `grad * (Phi(x) + x phi(x))`, Phi and phi the standard normal's
/// distribution and density. The density's e^(-x^2/2) is the one erf(x / sqrt 2) computes.
pub fn gelu_grad(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = grad.to_vec();
    gelu_grad_in_place(x, &mut out);
    out
}

/// `gelu_grad` over the output's gradient in place.
pub fn gelu_grad_in_place(x: &[f32], grad: &mut [f32]) {
    assert_eq!(x.len(), grad.len(), "one gradient per value");
    grad.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(grad, x)| gelu_grad_chunk(x, grad));
}

#[multiversion(targets = "simd")]
fn gelu_grad_chunk(x: &[f32], grad: &mut [f32]) {
    for (g, &x) in grad.iter_mut().zip(x) {
        let (erf, gauss) = erf_and_gauss(x * FRAC_1_SQRT_2);
        *g *= 0.5 * (1.0 + erf) + x * INV_SQRT_2PI * gauss;
    }
}

/// erf(x) = 1 - (a1 t + ... + a5 t^5) e^(-x^2), t = 1 / (1 + p |x|), odd in x.
#[inline(always)]
fn erf(x: f32) -> f32 {
    erf_and_gauss(x).0
}

/// erf(x) and the e^(-x^2) it is built from.
#[inline(always)]
fn erf_and_gauss(x: f32) -> (f32, f32) {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let gauss = exp(-a * a);
    ((1.0 - poly * gauss).copysign(x), gauss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_its_bound_of_the_true_value() {
        // Reference values of erf (to 1e-10) at a few points, and oddness; the bound is the
        // formula's 1.5e-7 plus what f32 arithmetic adds.
        for (x, want) in [
            (0.0f32, 0.0f64),
            (0.1, 0.1124629160),
            (0.5, 0.5204998778),
            (1.0, 0.8427007929),
            (2.0, 0.9953222650),
            (3.5, 0.9999992569),
        ] {
            for sign in [1.0f32, -1.0] {
                let got = erf(sign * x) as f64;
                assert!(
                    (got - sign as f64 * want).abs() < 5e-7,
                    "erf({}) = {got}",
                    sign * x
                );
            }
        }
    }

    #[test]
    fn gelu_equals_burns() {
        let device = crate::device::cpu();
        let x = Tensor::<3>::random(
            [2, 7, 300],
            burn::tensor::Distribution::Normal(0.0, 3.0),
            &device,
        );
        let diff: f32 = (gelu(x.clone()) - burn::tensor::activation::gelu(x))
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-6, "max |diff| {diff}");
    }
}

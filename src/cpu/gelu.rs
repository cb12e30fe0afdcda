//! GELU, `0.5 x (1 + erf(x / sqrt 2))` (the exact form, as burn's and PyTorch's default), in
//! parallel, with erf by Abramowitz and Stegun 7.1.26 (absolute error at most 1.5e-7).

use super::exp::exp;
use super::{applies, tensor, values};
use burn::tensor::Tensor;
use rayon::prelude::*;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// `burn::tensor::activation::gelu(x)`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !applies(&x) {
        return burn::tensor::activation::gelu(x);
    }
    let shape = x.dims();
    let mut data = values(x);
    data.par_chunks_mut(CHUNK).for_each(|chunk| {
        for v in chunk {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    });
    tensor(data, shape)
}

/// erf(x) = 1 - (a1 t + ... + a5 t^5) e^(-x^2), t = 1 / (1 + p |x|), odd in x.
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * exp(-a * a)).copysign(x)
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

//! Kernels for the CPU backend, where burn's own are slow: the VQ-GAN's convolutions and group
//! norms, and the prior's GELU and rotary embedding.
//!
//! burn's flex convolution repacks the weight for every 512-pixel tile, converts the input to
//! channels-last on one thread and scatters its output; its group norm is six passes over memory
//! and the SiLU after it one more, single-threaded, as is its GELU (a library `erff` per value).
//! Profiled on the emoji decoder (batch 16), convolutions and norms were more than half of the
//! decode; the GELU about a fifth of the prior's forward, the rotary embedding (a product with a
//! flipped view, which burn walks value by value) a tenth. Here a convolution is one matrix
//! product per band of output rows (or per kernel tap), read from and written to channels-first
//! memory, and a group norm with its SiLU, a GELU or a rotation one parallel pass. Most apply only
//! where no gradient is needed (`applies`: a plain CPU device, f32); those in `extension` are
//! operations of burn's CPU backend with their own backward pass, so training uses them too
//! (`on_cpu`). Every other device keeps burn's ops (the same formulas).

mod attention;
pub mod conv;
mod conv_grad;
mod cross_entropy;
mod exp;
mod extension;
mod gelu;
mod layer_norm;
mod linear;
mod matrix;
mod norm;
mod rotary;
mod softmax;

pub use attention::attention;
pub use conv::{conv2d, norm_silu_conv2d};
pub use cross_entropy::mean_nll;
pub use gelu::gelu;
pub use layer_norm::layer_norm;
pub use linear::linear;
pub use norm::{group_norm, group_norm_silu};
pub use rotary::rotate_pairs;
pub use softmax::scaled_softmax;

use burn::tensor::{DType, Tensor, TensorData};

/// Whether `x` lives where the inference kernels apply: the plain CPU device, in f32.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    on_cpu(x) && !x.device().is_autodiff()
}

/// Whether `x` is an f32 tensor on the CPU device, with or without autodiff: where the kernels
/// of `extension`, which carry their own backward pass, apply.
pub fn on_cpu<const D: usize>(x: &Tensor<D>) -> bool {
    // Device equality ignores autodiff.
    x.dtype() == DType::F32 && x.device() == crate::device::cpu()
}

/// The values of a tensor, in its (contiguous, row-major) order.
fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .try_into_vec::<f32>()
        .expect("an f32 tensor reads back as f32")
}

/// A CPU tensor of `shape` holding `values`.
fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), &crate::device::cpu())
}

/// The sum of `f(v)` over `values`: f32 within blocks of 1024 (16 lanes, which vectorise), the
/// blocks added in f64, so that a megapixel plane loses no precision to one long f32 sum.
#[multiversion::multiversion(targets = "simd")]
fn sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    values
        .chunks(1024)
        .map(|block| lane_sum(block, &f) as f64)
        .sum()
}

/// The sum of `f(v)` over `values` in 16 f32 lanes, then across the lanes: an order that
/// vectorises (a plain running sum must stay scalar, since f32 addition does not reassociate).
#[inline(always)]
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The largest `f(v)` over `values` (minus infinity for none), in 16 lanes as `lane_sum` adds.
#[inline(always)]
fn lane_max(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(f(v));
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(f(v)));
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

/// The sum of `a b` over two slices of one length, in 16 lanes as `lane_sum` adds.
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    lane_sum_of_pairs(a, b, |a, b| a * b)
}

/// The sum of `f(a, b)` over two slices of one length, in 16 lanes as `lane_sum` adds.
#[inline(always)]
fn lane_sum_of_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut lanes = [0.0f32; 16];
    let (mut a16, mut b16) = (a.chunks_exact(16), b.chunks_exact(16));
    for (a, b) in (&mut a16).zip(&mut b16) {
        for ((lane, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += f(a, b);
        }
    }
    let pairs = a16.remainder().iter().zip(b16.remainder());
    let tail: f32 = pairs.map(|(&a, &b)| f(a, b)).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::{GroupNormConfig, PaddingConfig2d};
    use burn::tensor::Distribution;
    use burn::tensor::activation::silu;
    use burn::tensor::ops::ConvOptions;

    fn random(shape: [usize; 4]) -> Tensor<4> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &crate::device::cpu())
    }

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar()
    }

    /// burn's own convolution with the same weights and padding: the independent reference.
    fn burn_conv(conv: &Conv2d, x: Tensor<4>, padding: [(usize, usize); 2]) -> Tensor<4> {
        let options = ConvOptions::new_with_padding(conv.stride, padding, [1, 1], 1);
        burn::tensor::module::conv2d(
            x,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
            options,
        )
    }

    #[test]
    fn convolutions_equal_burns() {
        let device = crate::device::cpu();
        // (batch, c_in, c_out, h, w, kernel, stride, padding, bias): 3x3 "same" in both batch
        // modes, several bands (64 channels at 64x64), 1x1, taming's downsampling (stride 2,
        // padded bottom/right only), an odd kernel, image and padding, strided (patch matrix) and
        // not (shifted products), no bias.
        let cases = [
            (1, 4, 6, 9, 7, [3, 3], [1, 1], [(1, 1), (1, 1)], true),
            (5, 4, 6, 9, 7, [3, 3], [1, 1], [(1, 1), (1, 1)], true),
            (1, 64, 8, 64, 64, [3, 3], [1, 1], [(1, 1), (1, 1)], true),
            (3, 5, 7, 6, 6, [1, 1], [1, 1], [(0, 0), (0, 0)], true),
            (2, 3, 4, 8, 10, [3, 3], [2, 2], [(0, 1), (0, 1)], true),
            (1, 3, 2, 7, 5, [5, 3], [1, 2], [(2, 1), (0, 1)], false),
            (2, 3, 2, 7, 5, [5, 3], [1, 1], [(2, 1), (0, 1)], false),
        ];
        for (batch, c_in, c_out, h, w, kernel, stride, padding, bias) in cases {
            let conv = Conv2dConfig::new([c_in, c_out], kernel)
                .with_stride(stride)
                .with_bias(bias)
                .init(&device);
            let x = random([batch, c_in, h, w]);
            let ours = conv::conv2d_padded(&conv, x.clone(), padding);
            let diff = max_diff(ours, burn_conv(&conv, x, padding));
            assert!(
                diff < 1e-4,
                "{kernel:?} {stride:?} {padding:?}: max |diff| {diff}"
            );
        }
    }

    #[test]
    fn upsampling_convolutions_equal_burns() {
        let device = crate::device::cpu();
        for batch in [1, 3] {
            let conv = Conv2dConfig::new([4, 5], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device);
            let x = random([batch, 4, 5, 6]);
            let enlarged = crate::vqgan::blocks::nearest_x2(x.clone());
            let reference = burn_conv(&conv, enlarged, [(1, 1), (1, 1)]);
            let diff = max_diff(conv::conv2d_nearest_x2(&conv, x), reference);
            assert!(diff < 1e-4, "batch {batch}: max |diff| {diff}");
        }
    }

    #[test]
    fn conv2d_reads_the_modules_own_padding() {
        let device = crate::device::cpu();
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 0, 2, 1))
            .init(&device);
        let x = random([2, 3, 6, 5]);
        let ours = conv2d(&conv, x.clone());
        // Explicit is (top, left, bottom, right).
        let diff = max_diff(ours, burn_conv(&conv, x, [(1, 2), (0, 1)]));
        assert!(diff < 1e-4, "max |diff| {diff}");
    }

    #[test]
    fn group_norms_equal_burns() {
        let device = crate::device::cpu();
        let mut norm = GroupNormConfig::new(4, 8).with_epsilon(1e-6).init(&device);
        // A different scale and shift per channel, so that a swapped gamma and beta, or one
        // group's channels read for another's, would show.
        let per_channel = |offset: f32| {
            let values: Vec<f32> = (0..8).map(|c| offset + 0.3 * c as f32).collect();
            Param::from_tensor(Tensor::<1>::from_floats(values.as_slice(), &device))
        };
        norm.gamma = Some(per_channel(0.5));
        norm.beta = Some(per_channel(-1.0));
        let x = random([3, 8, 5, 7]).mul_scalar(3.0).add_scalar(1.0);
        let plain = norm.forward(x.clone());
        let with_silu = silu(plain.clone());
        // A shared input (written to new memory, `x` kept intact), a sole owner (normalised in
        // place), and a view into a larger tensor (read where it lies).
        assert!(max_diff(group_norm(&norm, x.clone()), plain.clone()) < 1e-5);
        assert!(max_diff(group_norm_silu(&norm, x.clone()), with_silu.clone()) < 1e-5);
        let unique = || x.clone().add_scalar(0.0);
        assert!(max_diff(group_norm(&norm, unique()), plain.clone()) < 1e-5);
        assert!(max_diff(group_norm_silu(&norm, unique()), with_silu) < 1e-5);
        let view = Tensor::cat(vec![random([1, 8, 5, 7]), x.clone()], 0).narrow(0, 1, 3);
        assert!(max_diff(group_norm(&norm, view), plain.clone()) < 1e-5);
        // The shared input is as it was.
        assert!(max_diff(norm.forward(x), plain) == 0.0);
    }

    #[test]
    fn norm_silu_convolutions_equal_burns() {
        let device = crate::device::cpu();
        let mut norm = GroupNormConfig::new(2, 6).with_epsilon(1e-6).init(&device);
        let per_channel = |offset: f32| {
            let values: Vec<f32> = (0..6).map(|c| offset + 0.4 * c as f32).collect();
            Param::from_tensor(Tensor::<1>::from_floats(values.as_slice(), &device))
        };
        norm.gamma = Some(per_channel(0.7));
        norm.beta = Some(per_channel(-0.9));
        // (batch, kernel, padding): one image (parallel products) and three (parallel images),
        // uneven padding, and a pointwise convolution (normalised first, then convolved).
        let cases = [
            (1, [3, 3], [(1, 1), (1, 1)]),
            (3, [3, 3], [(1, 1), (1, 1)]),
            (2, [3, 3], [(0, 2), (1, 0)]),
            (2, [1, 1], [(0, 0), (0, 0)]),
        ];
        for (batch, kernel, padding) in cases {
            let [(top, bottom), (left, right)] = padding;
            let conv = Conv2dConfig::new([6, 5], kernel)
                .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
                .init(&device);
            let x = random([batch, 6, 7, 9]).mul_scalar(2.0).add_scalar(0.5);
            let reference = burn_conv(&conv, silu(norm.forward(x.clone())), padding);
            // A shared input (kept intact) and a view into a larger tensor.
            let diff = max_diff(norm_silu_conv2d(&norm, &conv, x.clone()), reference.clone());
            assert!(
                diff < 1e-4,
                "{kernel:?} {padding:?} batch {batch}: max |diff| {diff}"
            );
            let view = Tensor::cat(vec![random([1, 6, 7, 9]), x.clone()], 0).narrow(0, 1, batch);
            let diff = max_diff(norm_silu_conv2d(&norm, &conv, view), reference);
            assert!(
                diff < 1e-4,
                "{kernel:?} {padding:?} view: max |diff| {diff}"
            );
        }
        // Under autodiff: the same output and input gradient as burn's three steps.
        let device = device.autodiff();
        let (norm, conv) = (
            burn::module::Module::to_device(norm, &device),
            Conv2dConfig::new([6, 5], [3, 3]),
        );
        let conv = conv
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = Tensor::<4>::random([2, 6, 7, 9], Distribution::Normal(0.0, 1.0), &device);
        let target = Tensor::<4>::random([2, 5, 7, 9], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                norm_silu_conv2d(&norm, &conv, x.clone())
            } else {
                conv.forward(silu(norm.forward(x.clone())))
            };
            let grads = (y.clone() * target.clone()).sum().backward();
            (y.inner(), x.grad(&grads).unwrap())
        };
        let (ours, burns) = (run(true), run(false));
        assert!(max_diff(ours.0, burns.0) < 1e-4, "autodiff output");
        assert!(max_diff(ours.1, burns.1) < 1e-4, "autodiff input gradient");
    }

    #[test]
    fn autodiff_tensors_take_burns_path() {
        let x = Tensor::<4>::zeros([1, 2, 3, 3], &crate::device::cpu().autodiff());
        assert!(!applies(&x));
        assert!(applies(&random([1, 2, 3, 3])));
    }
}

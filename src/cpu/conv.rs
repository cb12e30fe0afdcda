//! Convolution as matrix products: for each band of output rows, the patches under the kernel are
//! laid out as a `[C_in * kh * kw, rows * W_out]` matrix (im2col, straight from channels-first
//! input) and multiplied by the weight `[C_out, C_in * kh * kw]` as it is stored, into the output
//! rows of every channel in place, the bias preloaded.

use super::matrix::{Matrix, multiply, overwrite};
use super::norm::{affine_on_cpu, group_norm_silu};
use super::{applies, conv_grad, on_cpu, tensor, values};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Floats of patch matrix (or of accumulated output rows) per band: a 64-px image is one band,
/// a 1024x1024 one at 128 channels about 32 rows. Measured on the ffhq1024 decode (2 cores):
/// 2^18 17.5 s, 2^20 13.9 s, 2^22 12.6 s, 2^24 13.2 s: fewer, larger products (each packs its
/// operands once) win until the band no longer stays in the last-level cache.
const BAND_FLOATS: usize = 1 << 22;

/// `conv.forward(x)`, on the fast path where it applies.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            conv2d_padded(conv, x, [(top, bottom), (left, right)])
        }
        PaddingConfig2d::Valid => conv2d_padded(conv, x, [(0, 0), (0, 0)]),
        PaddingConfig2d::Same => conv.forward(x),
    }
}

/// `conv.forward(nearest_x2(x))` (taming's Upsample) without the enlarged copy of `x`: each
/// pixel is doubled as the convolution pads its input.
pub fn conv2d_nearest_x2(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match conv.padding {
        // `convolve` itself falls back to burn's ops (after enlarging) where the kernels do not apply.
        PaddingConfig2d::Explicit(top, left, bottom, right) if conv.stride == [1, 1] => {
            convolve(conv, x, [(top, bottom), (left, right)], 2)
        }
        _ => conv2d(conv, crate::vqgan::blocks::nearest_x2(x)),
    }
}

/// `conv.forward(silu(norm.forward(x)))`, taming's pre-activation before a convolution: on the
/// CPU (f32, a biased stride-1 convolution) one operation, which at inference makes the
/// normalised input only inside the convolution's padded copy of `x` (one pass over memory less).
pub fn norm_silu_conv2d(norm: &GroupNorm, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, kh, kw] = conv.weight.dims();
    if let (PaddingConfig2d::Explicit(top, left, bottom, right), Some(bias)) =
        (&conv.padding, &conv.bias)
    {
        let padding = [(*top, *bottom), (*left, *right)];
        if plain(conv)
            && conv_grad::covers([kh, kw], conv.stride, padding)
            && let Some((gamma, beta)) = affine_on_cpu(norm, &x)
        {
            let norm = (gamma, beta, norm.num_groups, norm.epsilon);
            return super::extension::norm_silu_conv2d(norm, conv, bias.val(), x, padding);
        }
    }
    conv2d(conv, group_norm_silu(norm, x))
}

/// Whether `conv` is one the kernels here compute: ungrouped, undilated, f32.
fn plain(conv: &Conv2d) -> bool {
    conv.groups == 1 && conv.dilation == [1, 1] && conv.weight.val().dtype() == DType::F32
}

/// `conv`'s weights applied with `padding` `[(top, bottom), (left, right)]` instead of its own.
pub fn conv2d_padded(conv: &Conv2d, x: Tensor<4>, padding: [(usize, usize); 2]) -> Tensor<4> {
    convolve(conv, x, padding, 1)
}

/// The convolution of `x` enlarged `upsample` times (nearest neighbour; 1 or, at stride 1, 2).
fn convolve(
    conv: &Conv2d,
    x: Tensor<4>,
    padding: [(usize, usize); 2],
    upsample: usize,
) -> Tensor<4> {
    let [c_out, _, kh, kw] = conv.weight.dims();
    let plain = plain(conv);
    if plain && on_cpu(&x) && conv_grad::covers([kh, kw], conv.stride, padding) {
        // The extension's operation reads the input and weight where they lie (no copy of a
        // shared input) and, under autodiff, has its own backward pass.
        return super::extension::conv2d(conv, x, padding, upsample);
    }
    if plain && applies(&x) {
        let [batch, c_in, h_in, w_in] = x.dims();
        let g = Geometry::new([c_in, h_in, w_in], upsample, [kh, kw], conv.stride, padding);
        let weight = values(conv.weight.val());
        let bias = conv.bias.as_ref().map(|b| values(b.val()));
        let output = forward(&values(x), batch, &weight, bias.as_deref(), &g, None);
        return tensor(output, [batch, c_out, g.h_out, g.w_out]);
    }
    let x = if upsample == 2 {
        crate::vqgan::blocks::nearest_x2(x)
    } else {
        x
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    burn::tensor::module::conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// The convolution of `batch` images `[C_in, H_in, W_in]` (row-major `input`) by `weight`
/// `[C_out, C_in, kh, kw]` (plus `bias`), as `[batch, C_out, H_out, W_out]` values. With
/// `transform` (a group norm's `[mean, scale, shift]` per image and input channel, as
/// `norm::channel_transforms` gives them) the convolution reads `silu((x - mean) * scale + shift)`
/// instead of `x`, made only in its padded copy of the input (`Geometry::is_shifted` must hold).
pub(super) fn forward(
    input: &[f32],
    batch: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
    transform: Option<&[[f32; 3]]>,
) -> Vec<f32> {
    assert!(transform.is_none() || g.is_shifted());
    let plane_out = g.h_out * g.w_out;
    let c_out = weight.len() / (g.c_in * g.kh * g.kw);
    let len = batch * c_out * plane_out;
    // Every value is written once by its image's task (no zeroing pass first).
    let mut output = Vec::with_capacity(len);
    let image = |(index, (input, output)): (usize, (&[f32], &mut [MaybeUninit<f32>])),
                 parallel: bool| {
        let transform = transform.map(|t| &t[index * g.c_in..][..g.c_in]);
        convolve_image(input, weight, bias, output, g, transform, parallel)
    };
    let pairs = input
        .chunks(g.c_in * g.h * g.w / (g.upsample * g.upsample))
        .zip(output.spare_capacity_mut()[..len].chunks_mut(c_out * plane_out))
        .enumerate();
    if batch >= rayon::current_num_threads() {
        // Enough images to keep every thread busy: one image per task, serial products.
        pairs
            .collect::<Vec<_>>()
            .into_par_iter()
            .for_each(|p| image(p, false));
    } else {
        pairs.for_each(|p| image(p, true));
    }
    // SAFETY: each image's task wrote every value of its output (`convolve_image`).
    unsafe { output.set_len(len) };
    output
}

/// `values` once every element has been written.
///
/// # Safety
/// Every element of `values` must be initialised.
unsafe fn initialized(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the caller vouches that each is initialised.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Shapes of one convolution.
pub(super) struct Geometry {
    pub(super) c_in: usize,
    /// The input's size once enlarged `upsample` times (1: as it is).
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) upsample: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) stride: [usize; 2],
    pub(super) top: usize,
    pub(super) left: usize,
    pub(super) h_out: usize,
    pub(super) w_out: usize,
}

impl Geometry {
    /// The geometry of a `[kh, kw]` kernel over `[C_in, H_in, W_in]` images enlarged `upsample`
    /// times, padded `[(top, bottom), (left, right)]`.
    pub(super) fn new(
        [c_in, h_in, w_in]: [usize; 3],
        upsample: usize,
        [kh, kw]: [usize; 2],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
    ) -> Self {
        let (h, w) = (h_in * upsample, w_in * upsample);
        Self {
            c_in,
            h,
            w,
            upsample,
            kh,
            kw,
            stride,
            top: padding[0].0,
            left: padding[1].0,
            h_out: (h + padding[0].0 + padding[0].1 - kh) / stride[0] + 1,
            w_out: (w + padding[1].0 + padding[1].1 - kw) / stride[1] + 1,
        }
    }

    /// The padded input's size `(Hp, Wp)` for a stride-1 convolution.
    pub(super) fn padded_size(&self) -> (usize, usize) {
        (self.h_out + self.kh - 1, self.w_out + self.kw - 1)
    }

    /// Whether the convolution runs tap by tap over a padded copy of the input
    /// (`convolve_shifted`): stride 1 (or enlarged), except a plain pointwise one.
    pub(super) fn is_shifted(&self) -> bool {
        self.upsample > 1 || (self.stride == [1, 1] && !self.is_pointwise())
    }

    /// Whether this is taming's Upsample: the input enlarged twice, then a 3x3 kernel padded
    /// by one on every side (`convolve_upsampled`).
    fn is_taming_upsample(&self) -> bool {
        self.upsample == 2
            && [self.kh, self.kw, self.top, self.left] == [3, 3, 1, 1]
            && [self.h_out, self.w_out] == [self.h, self.w]
            && self.stride == [1, 1]
    }

    /// Whether the input itself is the patch matrix (a 1x1 kernel, stride 1, no padding).
    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.h_out == self.h
            && self.w_out == self.w
    }
}

/// One image `[C_in, H, W]` into its output `[C_out, H_out, W_out]`, every value of which it
/// writes.
fn convolve_image(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [MaybeUninit<f32>],
    g: &Geometry,
    transform: Option<&[[f32; 3]]>,
    parallel: bool,
) {
    let plane_out = g.h_out * g.w_out;
    let c_out = output.len() / plane_out;
    if g.is_taming_upsample() {
        return convolve_upsampled(input, weight, bias, output, g, transform, parallel);
    }
    if g.is_shifted() {
        return convolve_shifted(input, weight, bias, output, g, transform, parallel);
    }
    for (channel, plane) in output.chunks_mut(plane_out).enumerate() {
        plane.fill(MaybeUninit::new(bias.map_or(0.0, |b| b[channel])));
    }
    // SAFETY: every value was just written (the bias, or zero).
    let output = unsafe { initialized(output) };
    let k = g.c_in * g.kh * g.kw;
    if g.is_pointwise() {
        multiply(
            Matrix::dense(weight, k),
            Matrix::dense(input, plane_out),
            output,
            plane_out,
            c_out,
            k,
            plane_out,
            parallel,
        );
        return;
    }
    let rows_per_band = (BAND_FLOATS / (k * g.w_out)).clamp(1, g.h_out);
    let mut patches = vec![0.0f32; k * rows_per_band * g.w_out];
    for first_row in (0..g.h_out).step_by(rows_per_band) {
        let rows = rows_per_band.min(g.h_out - first_row);
        let n = rows * g.w_out;
        let patches = &mut patches[..k * n];
        let fill = |(row, dst): (usize, &mut [f32])| fill_patch_row(input, dst, row, first_row, g);
        if parallel {
            patches.par_chunks_mut(n).enumerate().for_each(fill);
        } else {
            patches.chunks_mut(n).enumerate().for_each(fill);
        }
        multiply(
            Matrix::dense(weight, k),
            Matrix::dense(patches, n),
            &mut output[first_row * g.w_out..],
            plane_out,
            c_out,
            k,
            n,
            parallel,
        );
    }
}

/// A stride-1 convolution without a patch matrix: in the zero-padded (and, when asked, enlarged)
/// input `[C_in, Hp, Wp]` the input under kernel tap (ky, kx) for output (y, x) sits at
/// `(y + ky) * Wp + x + kx` of each channel's plane, so over "wide" output rows of Wp columns (the
/// last kw - 1 of each row wasted) every tap's input is one strided matrix `[C_in, rows * Wp]` at
/// offset `ky * Wp + kx`. Each band of output rows is then kh * kw products with the tap's weights
/// `[C_out, C_in]` (strided in the stored weight) accumulated in place, and its rows copied out
/// without the waste.
fn convolve_shifted(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [MaybeUninit<f32>],
    g: &Geometry,
    transform: Option<&[[f32; 3]]>,
    parallel: bool,
) {
    let (hp, wp) = g.padded_size();
    let plane_out = g.h_out * g.w_out;
    let c_out = output.len() / plane_out;
    let padded = padded_input(input, g, transform, parallel);
    let taps = g.kh * g.kw;
    let rows_per_band = (BAND_FLOATS / (c_out * wp)).clamp(1, g.h_out);
    let mut wide = vec![0.0f32; c_out * rows_per_band * wp];
    for first_row in (0..g.h_out).step_by(rows_per_band) {
        let rows = rows_per_band.min(g.h_out - first_row);
        let n = rows * wp;
        let wide = &mut wide[..c_out * n];
        for tap in 0..taps {
            let (ky, kx) = (tap / g.kw, tap % g.kw);
            let lhs = Matrix {
                data: &weight[tap..],
                row_stride: g.c_in * taps,
                col_stride: taps,
            };
            let rhs = Matrix::dense(&padded[(first_row + ky) * wp + kx..], hp * wp);
            // The first tap writes the band (no zeroing pass), the others add to it.
            let product = if tap == 0 { overwrite } else { multiply };
            product(lhs, rhs, wide, n, c_out, g.c_in, n, parallel);
        }
        // The bands cover every output row of every channel: each value written once.
        copy_band(wide, bias, output, first_row, g);
    }
}

/// taming's Upsample (nearest x2, then a 3x3 convolution padded by one) by output phase: output
/// pixel (2i + py, 2j + px) sees input rows i - 1 + py and i + py (and columns likewise) through
/// a 2x2 kernel whose taps are sums of the 3x3 kernel's (`phase_weights`), so each of the four
/// phases is four tap products over the low-resolution input padded by one, as in
/// `convolve_shifted`: 16 products of `[C_out, C_in]` per input pixel instead of 36, and no
/// enlarged copy.
fn convolve_upsampled(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [MaybeUninit<f32>],
    g: &Geometry,
    transform: Option<&[[f32; 3]]>,
    parallel: bool,
) {
    let (h, w) = (g.h / 2, g.w / 2);
    let low = Geometry::new([g.c_in, h, w], 1, [3, 3], [1, 1], [(1, 1), (1, 1)]);
    let (hp, wp) = low.padded_size();
    let c_out = output.len() / (g.h_out * g.w_out);
    let padded = padded_input(input, &low, transform, parallel);
    let phases = phase_weights(weight, c_out, g.c_in);
    let rows_per_band = (BAND_FLOATS / (c_out * wp)).clamp(1, h);
    let mut wide = vec![0.0f32; c_out * rows_per_band * wp];
    for first_row in (0..h).step_by(rows_per_band) {
        let rows = rows_per_band.min(h - first_row);
        let n = rows * wp;
        let wide = &mut wide[..c_out * n];
        for (phase, taps) in phases.chunks(4 * c_out * g.c_in).enumerate() {
            let (py, px) = (phase / 2, phase % 2);
            for (tap, tap_weight) in taps.chunks(c_out * g.c_in).enumerate() {
                let (a, b) = (tap / 2, tap % 2);
                let lhs = Matrix::dense(tap_weight, g.c_in);
                let rhs = Matrix::dense(&padded[(first_row + py + a) * wp + px + b..], hp * wp);
                let product = if tap == 0 { overwrite } else { multiply };
                product(lhs, rhs, wide, n, c_out, g.c_in, n, parallel);
            }
            // The four phases cover every output pixel: each value written once.
            copy_phase(wide, bias, output, first_row, [py, px], g);
        }
    }
}

/// The 2x2 kernels of `convolve_upsampled` from a `[C_out, C_in, 3, 3]` weight: for phase (py,
/// px) and tap (a, b), four phases of four dense `[C_out, C_in]` matrices, the sum of the 3x3
/// taps whose rows `ROWS[py][a]` and columns `ROWS[px][b]` read the same input pixel once
/// enlarged.
fn phase_weights(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    const ROWS: [[&[usize]; 2]; 2] = [[&[0], &[1, 2]], [&[0, 1], &[2]]];
    let mut out = vec![0.0f32; 16 * c_out * c_in];
    for (index, matrix) in out.chunks_mut(c_out * c_in).enumerate() {
        let (phase, tap) = (index / 4, index % 4);
        let (ys, xs) = (ROWS[phase / 2][tap / 2], ROWS[phase % 2][tap % 2]);
        for (value, kernel) in matrix.iter_mut().zip(weight.chunks(9)) {
            *value = ys
                .iter()
                .flat_map(|&ky| xs.iter().map(move |&kx| kernel[ky * 3 + kx]))
                .sum();
        }
    }
    out
}

/// One phase's band of `convolve_upsampled` (`[C_out, rows, Wp]` wide rows of the low-resolution
/// grid from row `first_row`), plus the bias, into every other pixel of every other row of the
/// output planes.
#[multiversion(targets = "simd")]
fn copy_phase(
    wide: &[f32],
    bias: Option<&[f32]>,
    output: &mut [MaybeUninit<f32>],
    first_row: usize,
    [py, px]: [usize; 2],
    g: &Geometry,
) {
    let (plane_out, w, wp) = (g.h_out * g.w_out, g.w / 2, g.w / 2 + 2);
    let n = wide.len() / (output.len() / plane_out);
    let planes = wide.chunks(n).zip(output.chunks_mut(plane_out));
    for (channel, (band, plane)) in planes.enumerate() {
        let bias = bias.map_or(0.0, |b| b[channel]);
        for (r, src) in band.chunks(wp).enumerate() {
            let dst = &mut plane[(2 * (first_row + r) + py) * g.w_out..][..g.w_out];
            for (pair, &v) in dst.chunks_exact_mut(2).zip(&src[..w]) {
                pair[px].write(v + bias);
            }
        }
    }
}

/// One image `[C_in, H_in, W_in]` zero-padded (and enlarged, when asked) for a stride-1
/// convolution: `[C_in, Hp, Wp]` (`Geometry::padded_size`), plus the kw - 1 values that the last
/// tap's wasted columns of the last row run past the last plane. With `transform` (per channel)
/// each value is `silu((x - mean) * scale + shift)` of the input's (a group norm and its SiLU).
pub(super) fn padded_input(
    input: &[f32],
    g: &Geometry,
    transform: Option<&[[f32; 3]]>,
    parallel: bool,
) -> Vec<f32> {
    let (hp, wp) = g.padded_size();
    let len = g.c_in * hp * wp + g.kw - 1;
    // Each value written once, the padding as zeros (no zeroing pass over the whole buffer).
    let mut padded = Vec::with_capacity(len);
    let pad = |(channel, (dst, src)): (usize, (&mut [MaybeUninit<f32>], &[f32]))| {
        pad_plane(dst, src, g, transform.map(|t| t[channel]))
    };
    let (planes, tail) = padded.spare_capacity_mut()[..len].split_at_mut(g.c_in * hp * wp);
    tail.fill(MaybeUninit::new(0.0));
    let planes = planes
        .chunks_mut(hp * wp)
        .zip(input.chunks(g.h * g.w / (g.upsample * g.upsample)))
        .enumerate();
    if parallel {
        planes.collect::<Vec<_>>().into_par_iter().for_each(pad);
    } else {
        planes.for_each(pad);
    }
    // SAFETY: every plane's padding and interior, and the tail, were written above.
    unsafe { padded.set_len(len) };
    padded
}

/// One channel's plane of `padded_input` (`dst`, `[Hp, Wp]`) from its input plane `src`.
#[multiversion(targets = "simd")]
fn pad_plane(dst: &mut [MaybeUninit<f32>], src: &[f32], g: &Geometry, transform: Option<[f32; 3]>) {
    let zero = |values: &mut [MaybeUninit<f32>]| values.fill(MaybeUninit::new(0.0));
    let (wp, up) = (g.padded_size().1, g.upsample);
    let (top, rest) = dst.split_at_mut(g.top * wp);
    let (middle, bottom) = rest.split_at_mut(g.h * wp);
    zero(top);
    zero(bottom);
    let rows = src
        .chunks(g.w / up)
        .flat_map(|row| std::iter::repeat_n(row, up));
    for (line, row) in middle.chunks_mut(wp).zip(rows) {
        let (left, rest) = line.split_at_mut(g.left);
        let (inner, right) = rest.split_at_mut(g.w);
        zero(left);
        zero(right);
        match transform {
            Some(t) => fill_row(inner, row, up, |v| super::norm::normalized_silu(v, t)),
            None => fill_row(inner, row, up, |v| v),
        }
    }
}

/// `f` of each value of `row`, each repeated `up` times, into `dst`.
#[inline(always)]
fn fill_row(dst: &mut [MaybeUninit<f32>], row: &[f32], up: usize, f: impl Fn(f32) -> f32) {
    if up == 1 {
        for (d, &v) in dst.iter_mut().zip(row) {
            d.write(f(v));
        }
    } else {
        for (pixels, &v) in dst.chunks_mut(up).zip(row) {
            pixels.fill(MaybeUninit::new(f(v)));
        }
    }
}

/// The output rows of one band, `[C_out, rows, Wp]` wide rows in `wide`, plus the bias, into the
/// output planes (`[C_out, H_out, W_out]`) from row `first_row`, without each row's wasted columns.
#[multiversion(targets = "simd")]
fn copy_band(
    wide: &[f32],
    bias: Option<&[f32]>,
    output: &mut [MaybeUninit<f32>],
    first_row: usize,
    g: &Geometry,
) {
    let (plane_out, wp) = (g.h_out * g.w_out, g.padded_size().1);
    let n = wide.len() / (output.len() / plane_out);
    for (channel, band) in wide.chunks(n).enumerate() {
        let bias = bias.map_or(0.0, |b| b[channel]);
        let dst = &mut output[channel * plane_out + first_row * g.w_out..][..n / wp * g.w_out];
        for (dst, src) in dst.chunks_mut(g.w_out).zip(band.chunks(wp)) {
            for (d, &s) in dst.iter_mut().zip(src) {
                d.write(s + bias);
            }
        }
    }
}

/// One row of the patch matrix: input channel, kernel row and column `row` (in that order, as the
/// weight stores them), over the output rows of the band from `first_row`; zeros in the padding.
fn fill_patch_row(input: &[f32], dst: &mut [f32], row: usize, first_row: usize, g: &Geometry) {
    let (channel, ky, kx) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
    let plane = &input[channel * g.h * g.w..][..g.h * g.w];
    for (i, dst) in dst.chunks_mut(g.w_out).enumerate() {
        let y = ((first_row + i) * g.stride[0] + ky) as isize - g.top as isize;
        if y < 0 || y >= g.h as isize {
            dst.fill(0.0);
            continue;
        }
        let src = &plane[y as usize * g.w..][..g.w];
        let shift = kx as isize - g.left as isize;
        if g.stride[1] == 1 {
            // Output columns whose input column ox + shift lies inside the image: one copy.
            let lo = (-shift).clamp(0, g.w_out as isize) as usize;
            let hi = (g.w as isize - shift).clamp(lo as isize, g.w_out as isize) as usize;
            dst[..lo].fill(0.0);
            dst[lo..hi].copy_from_slice(&src[(lo as isize + shift) as usize..][..hi - lo]);
            dst[hi..].fill(0.0);
        } else {
            for (ox, d) in dst.iter_mut().enumerate() {
                let x = (ox * g.stride[1]) as isize + shift;
                *d = if x >= 0 && x < g.w as isize {
                    src[x as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

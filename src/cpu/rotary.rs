//! The rotary embedding's rotation of channel pairs, one parallel pass: (x0, x1) -> (x0 cos0 +
//! x1 ssin0, x1 cos1 + x0 ssin1) over the first `rot_dim` channels, with the signed sines
//! (-sin, sin) of `crate::hourglass::rotary`; the other channels pass through.

use super::{tensor, values};
use burn::tensor::Tensor;
use rayon::prelude::*;

/// Rotates `x` `[B, heads, N, dim_head]` by `cos` and `signed_sin` `[N, rot_dim]`.
pub fn rotate_pairs(x: Tensor<4>, cos: &[f32], signed_sin: &[f32], rot_dim: usize) -> Tensor<4> {
    let shape = x.dims();
    let [_, _, n, d] = shape;
    let mut data = values(x);
    // One task per (batch, head): its N rows of d channels.
    data.par_chunks_mut(n * d).for_each(|rows| {
        for (position, row) in rows.chunks_mut(d).enumerate() {
            let cos = &cos[position * rot_dim..][..rot_dim];
            let sin = &signed_sin[position * rot_dim..][..rot_dim];
            for ((pair, c), s) in row[..rot_dim]
                .chunks_exact_mut(2)
                .zip(cos.chunks_exact(2))
                .zip(sin.chunks_exact(2))
            {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c[0] + x1 * s[0];
                pair[1] = x1 * c[1] + x0 * s[1];
            }
        }
    });
    tensor(data, shape)
}

#[cfg(test)]
mod tests {
    use crate::hourglass::rotary::Rotary2d;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn rotation_equals_burns_path() {
        // dim_head 96 rotates its first 64 channels and passes 32 through; the autodiff device
        // takes burn's ops, the plain one this kernel.
        let (heads, dim_head, height, width) = (3, 96, 4, 5);
        let cpu = crate::device::cpu();
        let autodiff = cpu.clone().autodiff();
        let x = Tensor::<4>::random(
            [2, height * width, heads, dim_head],
            Distribution::Normal(0.0, 1.0),
            &cpu,
        )
        .swap_dims(1, 2); // not contiguous, as the attention's heads are
        let ours = Rotary2d::new(dim_head, height, width, height, width, &cpu).apply(x.clone());
        let theirs = Rotary2d::new(dim_head, height, width, height, width, &autodiff)
            .apply(Tensor::from_data(x.clone().into_data(), &autodiff));
        let theirs = Tensor::<4>::from_data(theirs.into_data(), &cpu);
        let diff: f32 = (ours.clone() - theirs).abs().max().into_scalar();
        assert!(diff < 1e-6, "max |diff| {diff}");
        // And it does rotate: the rotated channels change, the rest do not.
        let moved: f32 = (ours.clone() - x.clone())
            .narrow(3, 0, 64)
            .abs()
            .max()
            .into_scalar();
        let kept: f32 = (ours - x).narrow(3, 64, 32).abs().max().into_scalar();
        assert!(moved > 0.1 && kept == 0.0, "moved {moved}, kept {kept}");
    }
}

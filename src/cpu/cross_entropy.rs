//! The mean negative log-likelihood of target classes under logits (the SUNDAE loss), as one
//! parallel pass forward and one backward: per row the log-sum-exp (kept for the backward pass),
//! then `lse - logit[target]`; the gradient is `(softmax - onehot) / rows`. burn composes it from
//! a log-softmax (a maximum, a subtraction, an exponential, a sum, a logarithm, a subtraction),
//! a gather and a mean, each a pass over the logits forward and again backward.

use super::exp::exp;
use super::{lane_max, lane_sum};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use multiversion::multiversion;
use rayon::prelude::*;

/// Rows per parallel task.
const ROWS: usize = 64;

/// `-mean(log_softmax(logits, 2).gather(2, targets))` for logits `[B, N, V]` and one target class
/// per row (`targets`, B * N values below V): these kernels on the CPU device (with their backward
/// pass where gradients are tracked), burn's ops elsewhere.
pub fn mean_nll(logits: Tensor<3>, targets: &[u32]) -> Tensor<1> {
    let [b, n, v] = logits.dims();
    assert_eq!(targets.len(), b * n, "one target per row");
    assert!(
        targets.iter().all(|&t| (t as usize) < v),
        "targets below {v}"
    );
    if super::on_cpu(&logits) {
        return super::extension::mean_nll(logits, targets.to_vec());
    }
    let values: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let targets = Tensor::<3, Int>::from_data(TensorData::new(values, [b, n, 1]), &logits.device());
    log_softmax(logits, 2).gather(2, targets).mean().neg()
}

/// The mean NLL over the rows (`v` logits each) and each row's log-sum-exp.
pub fn forward(logits: &[f32], v: usize, targets: &[u32]) -> (f32, Vec<f32>) {
    let mut lse = vec![0.0f32; targets.len()];
    let total: f64 = lse
        .par_chunks_mut(ROWS)
        .zip(logits.par_chunks(ROWS * v))
        .zip(targets.par_chunks(ROWS))
        .map(|((lse, logits), targets)| rows_nll(logits, v, targets, lse))
        .sum();
    ((total / targets.len().max(1) as f64) as f32, lse)
}

/// The summed NLL of some rows, their log-sum-exp written to `lse`.
#[multiversion(targets = "simd")]
fn rows_nll(logits: &[f32], v: usize, targets: &[u32], lse: &mut [f32]) -> f64 {
    let mut total = 0.0f64;
    for ((row, &target), lse) in logits.chunks(v).zip(targets).zip(lse) {
        let max = lane_max(row, |x| x);
        *lse = max + lane_sum(row, |x| exp(x - max)).ln();
        total += f64::from(*lse - row[target as usize]);
    }
    total
}

/// The gradient in the logits, `grad * (softmax - onehot) / rows`, for the upstream `grad` of
/// the mean.
pub fn backward(logits: &[f32], lse: &[f32], targets: &[u32], grad: f32) -> Vec<f32> {
    let v = logits.len() / targets.len().max(1);
    let scale = grad / targets.len().max(1) as f32;
    let mut out = logits.to_vec();
    out.par_chunks_mut(ROWS * v)
        .zip(lse.par_chunks(ROWS))
        .zip(targets.par_chunks(ROWS))
        .for_each(|((rows, lse), targets)| rows_grad(rows, v, lse, targets, scale));
    out
}

/// `backward` of some rows, in place over their logits.
#[multiversion(targets = "simd")]
fn rows_grad(rows: &mut [f32], v: usize, lse: &[f32], targets: &[u32], scale: f32) {
    for ((row, &lse), &target) in rows.chunks_mut(v).zip(lse).zip(targets) {
        for x in row.iter_mut() {
            *x = exp(*x - lse) * scale;
        }
        row[target as usize] -= scale;
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    #[test]
    fn mean_nll_and_its_gradient_equal_burns_under_autodiff() {
        let device = crate::device::cpu().autodiff();
        // 3 x 70 rows (more than one task) of 37 classes, spread wide enough that the
        // log-sum-exp's shift by the maximum matters.
        let (b, n, v) = (3, 70, 37);
        let logits = Tensor::<3>::random([b, n, v], Distribution::Normal(0.0, 6.0), &device);
        let targets: Vec<u32> = (0..b * n).map(|i| (i * 7 % v) as u32).collect();
        let run = |ours: bool| {
            let x = logits.clone().require_grad();
            let loss = if ours {
                super::mean_nll(x.clone(), &targets)
            } else {
                let t: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
                let t = Tensor::<3, Int>::from_data(TensorData::new(t, [b, n, 1]), &device);
                burn::tensor::activation::log_softmax(x.clone(), 2)
                    .gather(2, t)
                    .mean()
                    .neg()
            };
            // A scale on the loss, so that the upstream gradient is not 1.
            let grads = loss.clone().mul_scalar(2.5).backward();
            (loss.into_scalar::<f32>(), x.grad(&grads).unwrap())
        };
        let (ours, burns) = (run(true), run(false));
        assert!(
            (ours.0 - burns.0).abs() < 1e-5,
            "loss {} vs {}",
            ours.0,
            burns.0
        );
        let diff: f32 = (ours.1 - burns.1).abs().max().into_scalar();
        assert!(diff < 1e-6, "gradient max |diff| {diff}");
    }
}

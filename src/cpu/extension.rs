//! The kernels as operations of burn's CPU backend (Flex), through a backend extension, so that
//! they also run where gradients are tracked: on `Autodiff<Flex>` each one records a hand-written
//! backward pass (itself a parallel kernel) instead of burn's decomposition into single-threaded
//! element-wise steps. Callers check `super::on_cpu` first: the extension only routes to Flex.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Tensor, TensorData};

#[backend_extension(Flex, Autodiff)]
pub trait CpuKernels: Backend {
    /// `0.5 x (1 + erf(x / sqrt 2))` of every value.
    fn gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x W + b` for `x` `[rows, d_in]` and burn's `[d_in, d_out]` weight.
    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `x W`, the same without a bias.
    fn linear_unbiased(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Layer normalisation over the last dimension, then `* gamma + beta`.
    fn layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self>;

    /// Softmax over the last dimension of `x * scale`.
    fn scaled_softmax(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;

    /// The rotary embedding's rotation of `x` `[B, heads, N, d]` by `cos` and `signed_sin`
    /// `[N, rot_dim]` (`super::rotary`).
    fn rotate_pairs(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        signed_sin: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `softmax(scale * q kᵀ) v` over `[B, heads, N, d]` queries and `[B, heads, M, d]` keys and
    /// values, as `[B, N, heads * d]` rows (`super::attention`).
    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self>;

    /// Group norm of `x` `[B, C, H, W]` in `groups` groups, then `* gamma + beta` per channel and,
    /// when `silu`, a SiLU (`super::norm`).
    fn group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        silu: bool,
    ) -> FloatTensor<Self>;

    /// The stride-1 convolution (`super::conv`) of `x` `[B, C_in, H, W]` enlarged `upsample`
    /// times (nearest neighbour), padded `[top, bottom, left, right]`, by `weight` `[C_out, C_in,
    /// kh, kw]`, plus `bias`.
    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: [usize; 4],
        upsample: usize,
    ) -> FloatTensor<Self>;

    /// The same without a bias.
    fn conv2d_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        padding: [usize; 4],
        upsample: usize,
    ) -> FloatTensor<Self>;

    /// The mean negative log-likelihood of `targets` (one class per row) under `logits` `[B, N,
    /// V]` (`super::cross_entropy`), as a tensor of one value.
    fn mean_nll(logits: FloatTensor<Self>, targets: Vec<u32>) -> FloatTensor<Self>;

    /// `conv2d` (no enlargement) of `group_norm` with its SiLU: at inference the normalised
    /// input exists only inside the convolution's padded copy of `x`.
    #[allow(clippy::too_many_arguments)]
    fn norm_silu_conv2d(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: [usize; 4],
    ) -> FloatTensor<Self>;
}

/// GELU (`super::gelu`) of an f32 tensor on the CPU device, with or without autodiff.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::gelu(x.into_dispatch()))
}

/// `linear.forward(x)` for an f32 `x` `[rows, d_in]` on the CPU device, with or without autodiff.
pub fn linear(linear: &burn::nn::Linear, x: Tensor<2>) -> Tensor<2> {
    let (x, weight) = (x.into_dispatch(), linear.weight.val().into_dispatch());
    Tensor::from_dispatch(match &linear.bias {
        Some(bias) => <Dispatch as CpuKernels>::linear(x, weight, bias.val().into_dispatch()),
        None => <Dispatch as CpuKernels>::linear_unbiased(x, weight),
    })
}

/// Layer normalisation (`super::layer_norm`) of an f32 tensor on the CPU device.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f32,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::layer_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    ))
}

/// `softmax(x * scale)` over the last dimension of an f32 tensor on the CPU device.
pub fn scaled_softmax<const D: usize>(x: Tensor<D>, scale: f32) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::scaled_softmax(
        x.into_dispatch(),
        scale,
    ))
}

/// The rotary rotation (`super::rotary`) of an f32 tensor on the CPU device; `cos` and
/// `signed_sin` are constants (no gradient flows into them).
pub fn rotate_pairs(x: Tensor<4>, cos: Tensor<2>, signed_sin: Tensor<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::rotate_pairs(
        x.into_dispatch(),
        cos.into_dispatch(),
        signed_sin.into_dispatch(),
    ))
}

/// Attention (`super::attention`) of f32 tensors on the CPU device, with or without autodiff.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, scale: f32) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        scale,
    ))
}

/// Group norm (and SiLU) of an f32 tensor on the CPU device, with or without autodiff.
pub fn group_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    epsilon: f64,
    silu: bool,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::group_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        groups,
        epsilon,
        silu,
    ))
}

/// `conv`'s weights over `x` enlarged `upsample` times and padded `[(top, bottom), (left,
/// right)]`, stride 1, for f32 tensors on the CPU device, with or without autodiff.
pub fn conv2d(
    conv: &burn::nn::conv::Conv2d,
    x: Tensor<4>,
    [(top, bottom), (left, right)]: [(usize, usize); 2],
    upsample: usize,
) -> Tensor<4> {
    let padding = [top, bottom, left, right];
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    Tensor::from_dispatch(match &conv.bias {
        Some(bias) => <Dispatch as CpuKernels>::conv2d(
            x,
            weight,
            bias.val().into_dispatch(),
            padding,
            upsample,
        ),
        None => <Dispatch as CpuKernels>::conv2d_unbiased(x, weight, padding, upsample),
    })
}

/// The mean NLL of `targets` under `logits` (`super::cross_entropy`), for f32 tensors on the CPU
/// device, with or without autodiff.
pub fn mean_nll(logits: Tensor<3>, targets: Vec<u32>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::mean_nll(
        logits.into_dispatch(),
        targets,
    ))
}

/// `conv2d(conv, silu(group_norm(x)))` with `norm`'s gamma and beta, for f32 tensors on the CPU
/// device, with or without autodiff; `conv` has a bias and no enlargement.
pub fn norm_silu_conv2d(
    (gamma, beta, groups, epsilon): (Tensor<1>, Tensor<1>, usize, f64),
    conv: &burn::nn::conv::Conv2d,
    bias: Tensor<1>,
    x: Tensor<4>,
    [(top, bottom), (left, right)]: [(usize, usize); 2],
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::norm_silu_conv2d(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        groups,
        epsilon,
        conv.weight.val().into_dispatch(),
        bias.into_dispatch(),
        [top, bottom, left, right],
    ))
}

/// The last dimension of a Flex tensor.
fn last_dim(x: &FlexTensor) -> usize {
    *x.layout()
        .shape()
        .last()
        .expect("a tensor of rank one or more")
}

/// `x` itself when its strides are all positive (any layout the kernels can read in place),
/// otherwise a contiguous copy.
fn readable(x: FlexTensor) -> FlexTensor {
    if x.layout().has_positive_strides() {
        x
    } else {
        x.to_contiguous()
    }
}

/// A rank-4 Flex tensor (of positive strides: `readable`) as blocks of its last two dimensions.
fn heads(x: &FlexTensor) -> super::attention::Heads<'_> {
    let layout = x.layout();
    let dims = |v: &[usize]| -> [usize; 4] { v.try_into().expect("a rank-4 tensor") };
    let strides: Vec<usize> = layout.strides().iter().map(|&s| s as usize).collect();
    super::attention::Heads {
        data: x.storage::<f32>(),
        offset: layout.start_offset(),
        strides: dims(&strides),
        shape: dims(layout.shape()),
    }
}

/// The values of a Flex tensor in row-major order (copied only when it is a strided view).
fn contiguous(x: &FlexTensor) -> Values<'_> {
    match x.as_slice::<f32>() {
        Some(values) => Values::Borrowed(values),
        None => Values::Copied(x.to_contiguous()),
    }
}

/// A tensor's values: its own memory, or a contiguous copy of a strided view.
enum Values<'a> {
    Borrowed(&'a [f32]),
    Copied(FlexTensor),
}

impl std::ops::Deref for Values<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Values::Borrowed(values) => values,
            Values::Copied(x) => x.as_slice::<f32>().expect("a contiguous f32 copy"),
        }
    }
}

/// A Flex tensor with `like`'s shape holding `values`.
fn shaped_like(like: &FlexTensor, values: Vec<f32>) -> FlexTensor {
    shaped(values, like.layout().shape().to_vec())
}

fn shaped(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `[d_in, d_out]` of a linear layer's weight.
fn weight_dims(weight: &FlexTensor) -> (usize, usize) {
    let shape = weight.layout().shape();
    (shape[0], shape[1])
}

impl CpuKernels for Flex {
    fn gelu(x: FlexTensor) -> FlexTensor {
        let out = super::gelu::gelu_values(&contiguous(&x));
        shaped_like(&x, out)
    }

    fn linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_flex(x, weight, Some(bias))
    }

    fn linear_unbiased(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        linear_flex(x, weight, None)
    }

    fn layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f32) -> FlexTensor {
        let (out, _) = layer_norm_flex(&x, &gamma, &beta, epsilon);
        out
    }

    fn scaled_softmax(x: FlexTensor, scale: f32) -> FlexTensor {
        let out = super::softmax::forward(&contiguous(&x), last_dim(&x), scale);
        shaped_like(&x, out)
    }

    fn rotate_pairs(x: FlexTensor, cos: FlexTensor, signed_sin: FlexTensor) -> FlexTensor {
        rotate_flex(&x, &cos, &contiguous(&signed_sin))
    }

    fn attention(q: FlexTensor, k: FlexTensor, v: FlexTensor, scale: f32) -> FlexTensor {
        let (q, k, v) = (readable(q), readable(k), readable(v));
        attention_flex(&q, &k, &v, scale).0
    }

    fn group_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        groups: usize,
        epsilon: f64,
        silu: bool,
    ) -> FlexTensor {
        group_norm_owned(x, &gamma, &beta, groups, epsilon, silu)
    }

    fn conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        padding: [usize; 4],
        upsample: usize,
    ) -> FlexTensor {
        conv_flex(&x, &weight, Some(&bias), padding, upsample)
    }

    fn conv2d_unbiased(
        x: FlexTensor,
        weight: FlexTensor,
        padding: [usize; 4],
        upsample: usize,
    ) -> FlexTensor {
        conv_flex(&x, &weight, None, padding, upsample)
    }

    fn mean_nll(logits: FlexTensor, targets: Vec<u32>) -> FlexTensor {
        let v = last_dim(&logits);
        let (loss, _) = super::cross_entropy::forward(&contiguous(&logits), v, &targets);
        shaped(vec![loss], vec![1])
    }

    fn norm_silu_conv2d(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        groups: usize,
        epsilon: f64,
        weight: FlexTensor,
        bias: FlexTensor,
        padding: [usize; 4],
    ) -> FlexTensor {
        let (g, batch) = conv_geometry(&x, &weight, padding, 1);
        if !g.is_shifted() {
            let normalized = group_norm_owned(x, &gamma, &beta, groups, epsilon, true);
            return conv_flex(&normalized, &weight, Some(&bias), padding, 1);
        }
        let input = contiguous(&x);
        let groups = super::norm::Groups::new(x.layout().shape(), groups, epsilon);
        let (gamma, beta) = (contiguous(&gamma), contiguous(&beta));
        let transforms = super::norm::channel_transforms(&input, &gamma, &beta, &groups);
        let c_out = weight.layout().shape()[0];
        let (weight, bias) = (contiguous(&weight), contiguous(&bias));
        let out = super::conv::forward(&input, batch, &weight, Some(&bias), &g, Some(&transforms));
        shaped(out, vec![batch, c_out, g.h_out, g.w_out])
    }
}

/// The output `[B, N, heads * d]` and the weights for the backward pass.
fn attention_flex(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    scale: f32,
) -> (FlexTensor, Vec<f32>) {
    let [batch, h, n, d] = heads(q).shape;
    let (out, weights) = super::attention::forward(heads(q), heads(k), heads(v), scale);
    (shaped(out, vec![batch, n, h * d]), weights)
}

/// Parents: the queries, keys and values.
#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    /// The queries, keys and values (`readable`), the weights and the scale.
    type State = (FlexTensor, FlexTensor, FlexTensor, Vec<f32>, f32);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [q_node, k_node, v_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (q, k, v, weights, scale) = ops.state;
        let grad = contiguous(&grad);
        let grad_rows = super::attention::Heads::merged_rows(&grad, heads(&q).shape);
        let (dq, dk, dv) =
            super::attention::backward(heads(&q), heads(&k), heads(&v), &weights, grad_rows, scale);
        for (node, values, like) in [(q_node, dq, &q), (k_node, dk, &k), (v_node, dv, &v)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, shaped_like(like, values));
            }
        }
    }
}

/// Rotates `x` `[B, heads, N, d]` by the `[N, rot_dim]` tables (`signed_sin` negated: back).
fn rotate_flex(x: &FlexTensor, cos: &FlexTensor, signed_sin: &[f32]) -> FlexTensor {
    let shape = x.layout().shape();
    let (n, d) = (shape[2], shape[3]);
    let rot_dim = last_dim(cos);
    let out = super::rotary::rotate(&contiguous(x), n, d, &contiguous(cos), signed_sin, rot_dim);
    shaped_like(x, out)
}

#[derive(Debug)]
struct RotaryBackward;

impl Backward<Flex, 1> for RotaryBackward {
    /// The two tables.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (cos, signed_sin) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let back: Vec<f32> = contiguous(&signed_sin).iter().map(|s| -s).collect();
            rotate_flex(&grad, &cos, &back)
        });
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    /// The output and the scale.
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, scale) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let dx =
                super::softmax::backward(&contiguous(&y), &contiguous(&grad), last_dim(&y), scale);
            shaped_like(&y, dx)
        });
    }
}

/// The output and, for the backward pass, the normalised input and each row's 1 / std.
fn layer_norm_flex(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f32,
) -> (FlexTensor, (FlexTensor, Vec<f32>)) {
    let (gamma, beta) = (contiguous(gamma), contiguous(beta));
    let (x_hat, inv_std) = super::layer_norm::normalise(&contiguous(x), gamma.len(), epsilon);
    let out = super::layer_norm::scale_shift(&x_hat, &gamma, &beta);
    (shaped_like(x, out), (shaped_like(x, x_hat), inv_std))
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    /// The normalised input, each row's 1 / std, and gamma.
    type State = (FlexTensor, Vec<f32>, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_hat, inv_std, gamma) = ops.state;
        let (dx, dgamma, dbeta) = super::layer_norm::backward(
            &contiguous(&grad),
            &contiguous(&x_hat),
            &inv_std,
            &contiguous(&gamma),
        );
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, shaped_like(&x_hat, dx));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, shaped_like(&gamma, dgamma));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, shaped_like(&gamma, dbeta));
        }
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |mut grad| {
            let x_values = contiguous(&x);
            // The gradient through GELU in place of the output's where no one else holds it.
            match owned_values(&mut grad) {
                Some(values) => {
                    super::gelu::gelu_grad_in_place(&x_values, values);
                    grad
                }
                None => shaped_like(&x, super::gelu::gelu_grad(&x_values, &contiguous(&grad))),
            }
        });
    }
}

fn linear_flex(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>) -> FlexTensor {
    let (d_in, d_out) = weight_dims(&weight);
    let bias = bias.as_ref().map(contiguous);
    let out = super::linear::forward(
        &contiguous(&x),
        &contiguous(&weight),
        bias.as_deref(),
        d_in,
        d_out,
    );
    let rows = x.layout().shape()[0];
    shaped(out, vec![rows, d_out])
}

/// Parent: the logits.
#[derive(Debug)]
struct MeanNllBackward;

impl Backward<Flex, 1> for MeanNllBackward {
    /// The logits, each row's log-sum-exp and the targets.
    type State = (FlexTensor, Vec<f32>, Vec<u32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (logits, lse, targets) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let grad = contiguous(&grad)[0];
            let dx = super::cross_entropy::backward(&contiguous(&logits), &lse, &targets, grad);
            shaped_like(&logits, dx)
        });
    }
}

/// Parents: the input, the weight and, when N = 3, the bias.
#[derive(Debug)]
struct LinearBackward;

impl<const N: usize> Backward<Flex, N> for LinearBackward {
    /// The input and the weight.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mut parents = ops.parents.into_iter();
        let (x_node, weight_node) = (parents.next().flatten(), parents.next().flatten());
        let bias_node = parents.next().flatten();
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state;
        let (d_in, d_out) = weight_dims(&weight);
        let grad_values = contiguous(&grad);
        if let Some(node) = x_node {
            let dx = super::linear::input_grad(&grad_values, &contiguous(&weight), d_in, d_out);
            grads.register::<Flex>(node.id, shaped_like(&x, dx));
        }
        if let Some(node) = weight_node {
            let dw = super::linear::weight_grad(&contiguous(&x), &grad_values, d_in, d_out);
            grads.register::<Flex>(node.id, shaped_like(&weight, dw));
        }
        if let Some(node) = bias_node {
            let db = super::linear::bias_grad(&grad_values, d_out);
            grads.register::<Flex>(node.id, shaped(db, vec![d_out]));
        }
    }
}

/// The group norm of `x` into a new tensor, `x` left as it is (it is still needed).
fn group_norm_flex(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    groups: usize,
    epsilon: f64,
    silu: bool,
) -> FlexTensor {
    let g = super::norm::Groups::new(x.layout().shape(), groups, epsilon);
    let input = contiguous(x);
    let mut data = vec![0.0f32; input.len()];
    let (gamma, beta) = (contiguous(gamma), contiguous(beta));
    if silu {
        let f = super::norm::silu_value;
        super::norm::normalize_into(&input, &mut data, &gamma, &beta, &g, f);
    } else {
        super::norm::normalize_into(&input, &mut data, &gamma, &beta, &g, |v| v);
    }
    shaped_like(x, data)
}

/// The values of `x` to change in place: where `x` is the only owner of its memory and its values
/// fill that memory in order.
fn owned_values(x: &mut FlexTensor) -> Option<&mut [f32]> {
    let elements = x.layout().num_elements();
    let whole = x.layout().contiguous_offsets() == Some((0, elements))
        && x.bytes().len() == elements * std::mem::size_of::<f32>();
    if whole {
        x.try_storage_mut::<f32>()
    } else {
        None
    }
}

/// The group norm of `x`, in place where `x` is the only owner of its contiguous memory.
fn group_norm_owned(
    mut x: FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    groups: usize,
    epsilon: f64,
    silu: bool,
) -> FlexTensor {
    let g = super::norm::Groups::new(x.layout().shape(), groups, epsilon);
    let (gamma_values, beta_values) = (contiguous(gamma), contiguous(beta));
    match owned_values(&mut x) {
        Some(data) => {
            let (gamma, beta) = (&*gamma_values, &*beta_values);
            if silu {
                super::norm::normalize_values(data, gamma, beta, &g, super::norm::silu_value);
            } else {
                super::norm::normalize_values(data, gamma, beta, &g, |v| v);
            }
            x
        }
        _ => group_norm_flex(&x, gamma, beta, groups, epsilon, silu),
    }
}

/// Parents: the input, gamma and beta.
#[derive(Debug)]
struct GroupNormBackward;

impl Backward<Flex, 3> for GroupNormBackward {
    /// The input, gamma, beta, the group count, epsilon and whether a SiLU follows.
    type State = (FlexTensor, FlexTensor, FlexTensor, usize, f64, bool);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, gamma, beta, groups, epsilon, silu) = ops.state;
        let g = super::norm::Groups::new(x.layout().shape(), groups, epsilon);
        let (dx, dgamma, dbeta) = super::norm::backward(
            &contiguous(&x),
            &contiguous(&grad),
            &contiguous(&gamma),
            &contiguous(&beta),
            &g,
            silu,
        );
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, shaped_like(&x, dx));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, shaped_like(&gamma, dgamma));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, shaped_like(&beta, dbeta));
        }
    }
}

/// The geometry of a stride-1 convolution of `x` by `weight`, and the batch size.
fn conv_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    [top, bottom, left, right]: [usize; 4],
    upsample: usize,
) -> (super::conv::Geometry, usize) {
    let (shape, kernel) = (x.layout().shape(), weight.layout().shape());
    let g = super::conv::Geometry::new(
        [shape[1], shape[2], shape[3]],
        upsample,
        [kernel[2], kernel[3]],
        [1, 1],
        [(top, bottom), (left, right)],
    );
    (g, shape[0])
}

fn conv_flex(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    padding: [usize; 4],
    upsample: usize,
) -> FlexTensor {
    let (g, batch) = conv_geometry(x, weight, padding, upsample);
    let c_out = weight.layout().shape()[0];
    let bias = bias.map(contiguous);
    let out = super::conv::forward(
        &contiguous(x),
        batch,
        &contiguous(weight),
        bias.as_deref(),
        &g,
        None,
    );
    shaped(out, vec![batch, c_out, g.h_out, g.w_out])
}

/// Parents: the input, the weight and, when N = 3, the bias.
#[derive(Debug)]
struct ConvBackward;

impl<const N: usize> Backward<Flex, N> for ConvBackward {
    /// The input, the weight, the padding and the enlargement.
    type State = (FlexTensor, FlexTensor, [usize; 4], usize);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mut parents = ops.parents.into_iter();
        let (x_node, weight_node) = (parents.next().flatten(), parents.next().flatten());
        let bias_node = parents.next().flatten();
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, padding, upsample) = ops.state;
        let (g, batch) = conv_geometry(&x, &weight, padding, upsample);
        let c_out = weight.layout().shape()[0];
        let grad_values = contiguous(&grad);
        if let Some(node) = x_node {
            let dx = super::conv_grad::input_grad(&grad_values, batch, &contiguous(&weight), &g);
            grads.register::<Flex>(node.id, shaped_like(&x, dx));
        }
        if let Some(node) = weight_node {
            let dw = super::conv_grad::weight_grad(&contiguous(&x), &grad_values, batch, c_out, &g);
            grads.register::<Flex>(node.id, shaped_like(&weight, dw));
        }
        if let Some(node) = bias_node {
            let db = super::conv_grad::bias_grad(&grad_values, c_out, &g);
            grads.register::<Flex>(node.id, shaped(db, vec![c_out]));
        }
    }
}

impl<C: CheckpointStrategy> CpuKernels for Autodiff<Flex, C> {
    fn gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.primitive().clone();
                let out = Flex::gelu(input.clone());
                prep.finish(input, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::gelu(x.into_primitive())),
        }
    }

    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        let bias = Some(bias.into_primitive());
        match LinearBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = linear_flex(x.clone(), weight.clone(), bias);
                prep.finish((x, weight), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(linear_flex(x, weight, bias)),
        }
    }

    fn linear_unbiased(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        match LinearBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = linear_flex(x.clone(), weight.clone(), None);
                prep.finish((x, weight), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(linear_flex(x, weight, None)),
        }
    }

    fn layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match LayerNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, (x_hat, inv_std)) = layer_norm_flex(&x, &gamma, &beta, epsilon);
                prep.finish((x_hat, inv_std, gamma), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::layer_norm(x, gamma, beta, epsilon)),
        }
    }

    fn scaled_softmax(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        match SoftmaxBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = Flex::scaled_softmax(x.into_primitive(), scale);
                prep.finish((out.clone(), scale), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::scaled_softmax(x.into_primitive(), scale))
            }
        }
    }

    fn rotate_pairs(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        signed_sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (cos, signed_sin) = (cos.into_primitive(), signed_sin.into_primitive());
        match RotaryBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = Flex::rotate_pairs(x.into_primitive(), cos.clone(), signed_sin.clone());
                prep.finish((cos, signed_sin), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::rotate_pairs(x.into_primitive(), cos, signed_sin))
            }
        }
    }

    fn attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let nodes = [q.node(), k.node(), v.node()];
        let (q, k, v) = (
            readable(q.into_primitive()),
            readable(k.into_primitive()),
            readable(v.into_primitive()),
        );
        match AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, weights) = attention_flex(&q, &k, &v, scale);
                prep.finish((q, k, v, weights, scale), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(attention_flex(&q, &k, &v, scale).0),
        }
    }

    fn group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        silu: bool,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match GroupNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = group_norm_flex(&x, &gamma, &beta, groups, epsilon, silu);
                prep.finish((x, gamma, beta, groups, epsilon, silu), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(group_norm_owned(x, &gamma, &beta, groups, epsilon, silu))
            }
        }
    }

    fn conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: [usize; 4],
        upsample: usize,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        let bias = bias.into_primitive();
        match ConvBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = conv_flex(&x, &weight, Some(&bias), padding, upsample);
                prep.finish((x, weight, padding, upsample), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(conv_flex(&x, &weight, Some(&bias), padding, upsample))
            }
        }
    }

    fn conv2d_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        padding: [usize; 4],
        upsample: usize,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        let (x, weight) = (x.into_primitive(), weight.into_primitive());
        match ConvBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = conv_flex(&x, &weight, None, padding, upsample);
                prep.finish((x, weight, padding, upsample), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(conv_flex(&x, &weight, None, padding, upsample))
            }
        }
    }

    fn mean_nll(logits: FloatTensor<Self>, targets: Vec<u32>) -> FloatTensor<Self> {
        let node = logits.node();
        let logits = logits.into_primitive();
        let v = last_dim(&logits);
        match MeanNllBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (loss, lse) = super::cross_entropy::forward(&contiguous(&logits), v, &targets);
                prep.finish((logits, lse, targets), shaped(vec![loss], vec![1]))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::mean_nll(logits, targets)),
        }
    }

    /// The two operations, each with its own backward pass (training keeps the normalised
    /// input for the convolution's weight gradient anyway).
    fn norm_silu_conv2d(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        padding: [usize; 4],
    ) -> FloatTensor<Self> {
        let normalized = Self::group_norm(x, gamma, beta, groups, epsilon, true);
        Self::conv2d(normalized, weight, bias, padding, 1)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Distribution, Tensor};

    /// `sum(f(x) * w)` and its gradient in x, on the autodiff CPU device.
    fn value_and_grad(
        x: &Tensor<3>,
        w: &Tensor<3>,
        f: fn(Tensor<3>) -> Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let x = x.clone().require_grad();
        let y = f(x.clone());
        let grads = (y.clone() * w.clone()).sum().backward();
        (y.inner(), x.grad(&grads).expect("x is tracked"))
    }

    fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn gelu_and_its_gradient_equal_burns_under_autodiff() {
        let device = crate::device::cpu().autodiff();
        let shape = [3, 5, 700];
        let x = Tensor::<3>::random(shape, Distribution::Normal(0.0, 3.0), &device);
        let w = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let (ours, ours_grad) = value_and_grad(&x, &w, super::gelu);
        let (burns, burns_grad) = value_and_grad(&x, &w, burn::tensor::activation::gelu);
        assert!(max_diff(ours, burns) < 1e-6);
        let diff = max_diff(ours_grad, burns_grad);
        assert!(diff < 2e-6, "gradient max |diff| {diff}");
    }

    #[test]
    fn linear_and_its_gradients_equal_burns_under_autodiff() {
        let device = crate::device::cpu().autodiff();
        for bias in [true, false] {
            let layer = LinearConfig::new(37, 53).with_bias(bias).init(&device);
            let x = Tensor::<2>::random([70, 37], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([70, 53], Distribution::Normal(0.0, 1.0), &device);
            let grads_of = |y: Tensor<2>, x: &Tensor<2>| {
                let grads = (y.clone() * w.clone()).sum().backward();
                let dx = x.grad(&grads).unwrap();
                let dw = layer.weight.grad(&grads).unwrap();
                let db = layer.bias.as_ref().map(|b| b.grad(&grads).unwrap());
                (y.inner(), dx, dw, db)
            };
            let x1 = x.clone().require_grad();
            let ours = grads_of(super::linear(&layer, x1.clone()), &x1);
            let x2 = x.clone().require_grad();
            let burns = grads_of(layer.forward(x2.clone()), &x2);
            let diff = |a: Tensor<2>, b: Tensor<2>| -> f32 { (a - b).abs().max().into_scalar() };
            assert!(diff(ours.0, burns.0) < 1e-4, "output");
            assert!(diff(ours.1, burns.1) < 1e-4, "input gradient");
            assert!(diff(ours.2, burns.2) < 1e-4, "weight gradient");
            if let (Some(a), Some(b)) = (ours.3, burns.3) {
                let d: f32 = (a - b).abs().max().into_scalar();
                assert!(d < 1e-4, "bias gradient {d}");
            }
        }
    }

    #[test]
    fn layer_norm_and_its_gradients_equal_burns_under_autodiff() {
        let device = crate::device::cpu().autodiff();
        let mut norm = burn::nn::LayerNormConfig::new(48).init(&device);
        // Parameters away from their 1 and 0 start, so that their gradients and their part in the
        // input's show.
        let random = |mean| Tensor::random([48], Distribution::Normal(mean, 0.5), &device);
        norm.gamma = burn::module::Param::from_tensor(random(1.0));
        norm.beta = Some(burn::module::Param::from_tensor(random(0.0)));
        let x = Tensor::<3>::random([4, 33, 48], Distribution::Normal(2.0, 3.0), &device);
        let w = Tensor::<3>::random([4, 33, 48], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                crate::cpu::layer_norm(&norm, x.clone())
            } else {
                norm.forward(x.clone())
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            let beta = norm.beta.as_ref().unwrap();
            (
                y.inner(),
                x.grad(&grads).unwrap(),
                norm.gamma.grad(&grads).unwrap(),
                beta.grad(&grads).unwrap(),
            )
        };
        let (ours, burns) = (run(true), run(false));
        assert!(max_diff(ours.0, burns.0) < 1e-5, "output");
        assert!(max_diff(ours.1, burns.1) < 1e-5, "input gradient");
        let d = |a: Tensor<1>, b: Tensor<1>| -> f32 { (a - b).abs().max().into_scalar() };
        assert!(d(ours.2, burns.2) < 1e-4, "gamma gradient");
        assert!(d(ours.3, burns.3) < 1e-4, "beta gradient");
    }

    #[test]
    fn scaled_softmax_and_its_gradient_equal_burns_under_autodiff() {
        let device = crate::device::cpu().autodiff();
        let shape = [2, 3, 17, 40];
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 4.0), &device);
        let w = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                crate::cpu::scaled_softmax(x.clone(), 0.3)
            } else {
                burn::tensor::activation::softmax(x.clone().mul_scalar(0.3), 3)
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            (y.inner(), x.grad(&grads).unwrap())
        };
        let (ours, burns) = (run(true), run(false));
        let d = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
        assert!(d(ours.0, burns.0) < 1e-6, "output");
        assert!(d(ours.1, burns.1) < 1e-6, "gradient");
    }

    #[test]
    fn convolutions_and_their_gradients_equal_burns_under_autodiff() {
        use burn::nn::PaddingConfig2d;
        use burn::nn::conv::Conv2dConfig;
        let device = crate::device::cpu().autodiff();
        // (batch, c_in, c_out, h, w, kernel, padding, enlarged, bias): 3x3 "same" with one image
        // (parallel products) and three (parallel images), 1x1, an odd kernel with uneven
        // padding, taming's Upsample (nearest x2 then 3x3), no bias.
        let cases = [
            (1, 4, 6, 9, 7, [3, 3], [(1, 1), (1, 1)], false, true),
            (3, 4, 6, 9, 7, [3, 3], [(1, 1), (1, 1)], false, true),
            (3, 5, 7, 6, 6, [1, 1], [(0, 0), (0, 0)], false, true),
            (2, 3, 2, 7, 5, [5, 3], [(2, 1), (0, 1)], false, false),
            (2, 4, 5, 5, 6, [3, 3], [(1, 1), (1, 1)], true, true),
            (1, 4, 5, 5, 6, [3, 3], [(1, 1), (1, 1)], true, false),
        ];
        for (batch, c_in, c_out, h, w, kernel, padding, enlarged, bias) in cases {
            let [(top, bottom), (left, right)] = padding;
            let conv = Conv2dConfig::new([c_in, c_out], kernel)
                .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
                .with_bias(bias)
                .init(&device);
            let x =
                Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
            let [h_out, w_out] = if enlarged { [2 * h, 2 * w] } else { [h, w] };
            let (h_out, w_out) = (
                h_out + padding[0].0 + padding[0].1 + 1 - kernel[0],
                w_out + padding[1].0 + padding[1].1 + 1 - kernel[1],
            );
            let target = Tensor::<4>::random(
                [batch, c_out, h_out, w_out],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours && enlarged {
                    crate::cpu::conv::conv2d_nearest_x2(&conv, x.clone())
                } else if ours {
                    crate::cpu::conv::conv2d(&conv, x.clone())
                } else {
                    let input = if enlarged {
                        crate::vqgan::blocks::nearest_x2(x.clone())
                    } else {
                        x.clone()
                    };
                    let options = ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1);
                    let bias = conv.bias.as_ref().map(|b| b.val());
                    burn::tensor::module::conv2d(input, conv.weight.val(), bias, options)
                };
                let grads = (y.clone() * target.clone()).sum().backward();
                let db = conv.bias.as_ref().map(|b| b.grad(&grads).unwrap());
                (
                    y.inner(),
                    x.grad(&grads).unwrap(),
                    conv.weight.grad(&grads).unwrap(),
                    db,
                )
            };
            let (ours, burns) = (run(true), run(false));
            let what = format!("{kernel:?} {padding:?} enlarged {enlarged} batch {batch}");
            let d4 = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
            assert!(d4(ours.0, burns.0) < 1e-4, "{what}: output");
            assert!(d4(ours.1, burns.1) < 1e-4, "{what}: input gradient");
            assert!(d4(ours.2, burns.2) < 1e-4, "{what}: weight gradient");
            if let (Some(a), Some(b)) = (ours.3, burns.3) {
                let d: f32 = (a - b).abs().max().into_scalar();
                assert!(d < 1e-4, "{what}: bias gradient {d}");
            }
        }
    }

    #[test]
    fn group_norms_and_their_gradients_equal_burns_under_autodiff() {
        let device = crate::device::cpu().autodiff();
        let mut norm = burn::nn::GroupNormConfig::new(4, 8)
            .with_epsilon(1e-6)
            .init(&device);
        // Parameters away from their 1 and 0 start, different per channel.
        let random = |mean| Tensor::random([8], Distribution::Normal(mean, 0.5), &device);
        norm.gamma = Some(burn::module::Param::from_tensor(random(1.0)));
        norm.beta = Some(burn::module::Param::from_tensor(random(0.0)));
        let x = Tensor::<4>::random([3, 8, 5, 7], Distribution::Normal(1.0, 3.0), &device);
        let w = Tensor::<4>::random([3, 8, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        for with_silu in [false, true] {
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = match (ours, with_silu) {
                    (true, true) => crate::cpu::group_norm_silu(&norm, x.clone()),
                    (true, false) => crate::cpu::group_norm(&norm, x.clone()),
                    (false, true) => burn::tensor::activation::silu(norm.forward(x.clone())),
                    (false, false) => norm.forward(x.clone()),
                };
                let grads = (y.clone() * w.clone()).sum().backward();
                let param = |p: &Option<burn::module::Param<Tensor<1>>>| {
                    p.as_ref().unwrap().grad(&grads).unwrap()
                };
                (
                    y.inner(),
                    x.grad(&grads).unwrap(),
                    param(&norm.gamma),
                    param(&norm.beta),
                )
            };
            let (ours, burns) = (run(true), run(false));
            let d4 = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
            let d1 = |a: Tensor<1>, b: Tensor<1>| -> f32 { (a - b).abs().max().into_scalar() };
            assert!(d4(ours.0, burns.0) < 1e-5, "silu {with_silu}: output");
            let dx = d4(ours.1, burns.1);
            assert!(dx < 1e-5, "silu {with_silu}: input gradient {dx}");
            assert!(
                d1(ours.2, burns.2) < 1e-4,
                "silu {with_silu}: gamma gradient"
            );
            assert!(
                d1(ours.3, burns.3) < 1e-4,
                "silu {with_silu}: beta gradient"
            );
        }
    }
}

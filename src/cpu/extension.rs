//! The kernels as operations of burn's CPU backend (Flex), through a backend extension, so that
//! they also run where gradients are tracked: on `Autodiff<Flex>` each one records a hand-written
//! backward pass (itself a parallel kernel) instead of burn's decomposition into single-threaded
//! element-wise steps. Callers check `super::on_cpu` first: the extension only routes to Flex.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Tensor, TensorData};

#[backend_extension(Flex, Autodiff)]
pub trait CpuKernels: Backend {
    /// `0.5 x (1 + erf(x / sqrt 2))` of every value.
    fn gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// GELU (`super::gelu`) of an f32 tensor on the CPU device, with or without autodiff.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CpuKernels>::gelu(x.into_dispatch()))
}

/// The values of a Flex tensor in row-major order (copied only when it is a strided view).
fn contiguous(x: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match x.as_slice::<f32>() {
        Some(values) => std::borrow::Cow::Borrowed(values),
        None => std::borrow::Cow::Owned(x.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
    }
}

/// A Flex tensor with `like`'s shape holding `values`.
fn shaped_like(like: &FlexTensor, values: Vec<f32>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, like.layout().shape().clone()))
}

impl CpuKernels for Flex {
    fn gelu(x: FlexTensor) -> FlexTensor {
        let out = super::gelu::gelu_values(&contiguous(&x));
        shaped_like(&x, out)
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(parent) = parent {
            let x = ops.state;
            let dx = super::gelu::gelu_grad(&contiguous(&x), &contiguous(&grad));
            grads.register::<Flex>(parent.id, shaped_like(&x, dx));
        }
    }
}

impl<C: CheckpointStrategy> CpuKernels for Autodiff<Flex, C> {
    fn gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let input = x.primitive().clone();
                let out = Flex::gelu(input.clone());
                prep.finish(input, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::gelu(x.into_primitive())),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    /// `sum(f(x) * w)` and its gradient in x, on the autodiff CPU device.
    fn value_and_grad(x: &Tensor<3>, w: &Tensor<3>, f: fn(Tensor<3>) -> Tensor<3>) -> (Tensor<3>, Tensor<3>) {
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
}

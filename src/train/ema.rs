//! Exponential moving average of a module's weights: ema <- decay * ema + (1 - decay) * current.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Every float parameter of a module, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let count = value.shape().num_elements();
        self.0.push(value.reshape([count]));
    }
}

/// Blends the collected parameters into a module of the same structure, in the same order.
struct Blend {
    current: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self
            .current
            .next()
            .expect("the average and the model have the same parameters");
        let decay = self.decay;
        param.map(|average| {
            let shape = average.shape();
            average.mul_scalar(decay) + current.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// One averaging step: returns `decay * average + (1 - decay) * current`, parameter by parameter.
/// Both modules must have the same structure and live on the same device.
pub fn update<M: Module>(average: M, current: &M, decay: f64) -> M {
    let mut collect = Collect(Vec::new());
    current.visit(&mut collect);
    average.map(&mut Blend {
        current: collect.0.into_iter(),
        decay,
    })
}

//! The LPIPS perceptual distance with VGG16 features (SPEC.md 2.3; taming's `LPIPS`), read from a
//! safetensors file with torchvision's layer names (`features.{i}.weight`) plus the LPIPS linear heads
//! (`lin{k}.model.1.weight`). It is a fixed measure: training never updates it.

use crate::bundle::check_applied;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};
use std::path::Path;

/// VGG16 convolution widths, grouped into the five blocks whose last ReLU LPIPS reads.
const BLOCKS: [&[usize]; 5] = [
    &[64, 64],
    &[128, 128],
    &[256, 256, 256],
    &[512, 512, 512],
    &[512, 512, 512],
];

/// One LPIPS head: a 1x1 convolution without bias (taming keeps a Dropout before it at index 0).
#[derive(Module, Debug)]
pub struct LinHead {
    pub model: Vec<Conv2d>,
}

#[derive(Module, Debug)]
pub struct Lpips {
    /// The 13 VGG16 convolutions in order (torchvision's `features` indices, made contiguous).
    pub features: Vec<Conv2d>,
    pub lin0: LinHead,
    pub lin1: LinHead,
    pub lin2: LinHead,
    pub lin3: LinHead,
    pub lin4: LinHead,
}

impl Lpips {
    fn new(device: &Device) -> Self {
        let mut features = Vec::new();
        let mut cin = 3;
        for block in BLOCKS {
            for &cout in block {
                features.push(
                    Conv2dConfig::new([cin, cout], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                );
                cin = cout;
            }
        }
        let head = |c: usize| LinHead {
            model: vec![
                Conv2dConfig::new([c, 1], [1, 1])
                    .with_bias(false)
                    .init(device),
            ],
        };
        Self {
            features,
            lin0: head(64),
            lin1: head(128),
            lin2: head(256),
            lin3: head(512),
            lin4: head(512),
        }
    }

    /// Reads VGG16 + LPIPS head weights; every tensor must be there.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if !path.is_file() {
            bail!("VGG16/LPIPS weights {} do not exist", path.display());
        }
        let mut model = Self::new(device);
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .map_indices_contiguous(true)
            .validate(false)
            .allow_partial(true);
        let result = model.load_from(&mut store).map_err(|e| {
            anyhow::anyhow!("{}: not a readable safetensors file ({e})", path.display())
        })?;
        check_applied(&result, path, false)?;
        Ok(model.no_grad())
    }

    /// VGG features at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3.
    fn taps(&self, mut x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut taps = Vec::with_capacity(5);
        let mut convs = self.features.iter();
        for (i, block) in BLOCKS.iter().enumerate() {
            if i > 0 {
                x = max_pool2d(x, MaxPoolOptions::new([2, 2]));
            }
            for _ in 0..block.len() {
                x = relu(convs.next().expect("13 convolutions").forward(x));
            }
            taps.push(x.clone());
        }
        taps
    }

    /// The distance per image, `[B, 1, 1, 1]`, for images in [-1, 1].
    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        let device = a.device();
        let shift = Tensor::<4>::from_data(
            TensorData::new(vec![-0.030f32, -0.088, -0.188], [1, 3, 1, 1]),
            &device,
        );
        let scale = Tensor::<4>::from_data(
            TensorData::new(vec![0.458f32, 0.448, 0.450], [1, 3, 1, 1]),
            &device,
        );
        let scaled = |x: Tensor<4>| (x - shift.clone()) / scale.clone();
        let heads = [&self.lin0, &self.lin1, &self.lin2, &self.lin3, &self.lin4];
        let mut total: Option<Tensor<4>> = None;
        for ((fa, fb), head) in self
            .taps(scaled(a))
            .into_iter()
            .zip(self.taps(scaled(b)))
            .zip(heads)
        {
            let diff = (unit_channels(fa) - unit_channels(fb)).square();
            let layer = head.model[0].forward(diff).mean_dim(2).mean_dim(3);
            total = Some(match total {
                Some(t) => t + layer,
                None => layer,
            });
        }
        total.expect("five layers")
    }
}

/// Divides each position's feature vector by its length (eps 1e-10, as LPIPS).
fn unit_channels(x: Tensor<4>) -> Tensor<4> {
    let norm = x.clone().square().sum_dim(1).sqrt().add_scalar(1e-10);
    x / norm
}

//! Taming's PatchGAN `NLayerDiscriminator` (SPEC.md 2.3), with its N(0, 0.02) initialisation.
//! Layer `layers.{i}` holds taming's convolution and batch norm of stage i (`main.*` there).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Tensor};

/// One convolution, optionally followed by batch norm; LeakyReLU(0.2) after all but the last.
#[derive(Module, Debug)]
pub struct DiscriminatorLayer {
    pub conv: Conv2d,
    pub norm: Option<BatchNorm>,
    pub activate: bool,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub layers: Vec<DiscriminatorLayer>,
}

fn conv(cin: usize, cout: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [4, 4])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        })
        .init(device)
}

fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(channels).init(device);
    // Taming: BN weight ~ N(1, 0.02), bias 0.
    norm.gamma = Initializer::Normal {
        mean: 1.0,
        std: 0.02,
    }
    .init([channels], device);
    norm
}

impl Discriminator {
    /// `n_layers` stride-2 stages after the first (taming default 3), base width `ndf` (64).
    pub fn new(n_layers: usize, ndf: usize, device: &Device) -> Self {
        let mut layers = vec![DiscriminatorLayer {
            conv: conv(3, ndf, 2, true, device),
            norm: None,
            activate: true,
        }];
        let mut mult = 1;
        for n in 1..=n_layers {
            let prev = mult;
            mult = (1 << n).min(8);
            let stride = if n == n_layers { 1 } else { 2 };
            layers.push(DiscriminatorLayer {
                conv: conv(ndf * prev, ndf * mult, stride, false, device),
                norm: Some(batch_norm(ndf * mult, device)),
                activate: true,
            });
        }
        layers.push(DiscriminatorLayer {
            conv: conv(ndf * mult, 1, 1, true, device),
            norm: None,
            activate: false,
        });
        Self { layers }
    }

    /// Patch logits `[B, 1, h, w]` for images `[B, 3, H, W]`.
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for layer in &self.layers {
            x = layer.conv.forward(x);
            if let Some(norm) = &layer.norm {
                x = norm.forward(x);
            }
            if layer.activate {
                x = leaky_relu(x, 0.2);
            }
        }
        x
    }
}

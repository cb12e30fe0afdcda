//! Inception-v3 as pytorch-fid builds it for FID (`pytorch_fid.inception.fid_inception_v3`): torchvision's
//! network with the TensorFlow quirks of the 2015 FID graph (average pools that leave padding out of
//! the count, a max pool in the last block), read from pytorch-fid's own weights
//! (`pt_inception-2015-12-05-*.pth`) or from a safetensors file with the same tensor names. Features are
//! the 2048 channels of the final average pool (or, with fewer `dims`, the pooled output of an earlier
//! block, as pytorch-fid's `--dims 64/192/768`).
//!
//! A safetensors file may say in its metadata that its network was trained on inputs in [0, 1] instead
//! of [-1, 1] (`sundae.input = "unit"`) and that its last block pools by average (`sundae.last_pool =
//! "avg"`, Keras' InceptionV3): that is how `scripts/convert-nsfwjs-inception.mjs` marks the weights it
//! converts, so one network serves both.

use crate::bundle::check_applied;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The side the network sees: every image is resized to it (bilinear), as pytorch-fid does.
pub const INPUT_SIDE: usize = 299;
/// Feature widths pytorch-fid offers, by the block whose pooled output they are.
pub const DIMS: [usize; 4] = [64, 192, 768, 2048];

/// conv (no bias) + batch norm (eps 1e-3) + ReLU: torchvision's `BasicConv2d`.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl BasicConv2d {
    fn new(
        cin: usize,
        cout: usize,
        kernel: [usize; 2],
        stride: usize,
        pad: [usize; 2],
        device: &Device,
    ) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], kernel)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).with_epsilon(1e-3).init(device),
        }
    }

    /// A square kernel with stride 1 and the padding that keeps the size.
    fn same(cin: usize, cout: usize, k: usize, device: &Device) -> Self {
        Self::new(cin, cout, [k, k], 1, [k / 2, k / 2], device)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// The convolutions one after the other.
fn chain(x: Tensor<4>, convs: &[&BasicConv2d]) -> Tensor<4> {
    convs.iter().fold(x, |h, conv| conv.forward(h))
}

/// 3x3 average pool, stride 1, padding 1, padding left out of the count (TensorFlow's SAME pool).
fn avg_pool_same(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1])
            .with_count_include_pad(false),
    )
}

fn max_pool_same(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1]),
    )
}

fn max_pool_down(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

#[derive(Module, Debug)]
pub struct InceptionA {
    pub branch1x1: BasicConv2d,
    pub branch5x5_1: BasicConv2d,
    pub branch5x5_2: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(cin: usize, pool_features: usize, device: &Device) -> Self {
        Self {
            branch1x1: BasicConv2d::same(cin, 64, 1, device),
            branch5x5_1: BasicConv2d::same(cin, 48, 1, device),
            branch5x5_2: BasicConv2d::same(48, 64, 5, device),
            branch3x3dbl_1: BasicConv2d::same(cin, 64, 1, device),
            branch3x3dbl_2: BasicConv2d::same(64, 96, 3, device),
            branch3x3dbl_3: BasicConv2d::same(96, 96, 3, device),
            branch_pool: BasicConv2d::same(cin, pool_features, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let bp = self.branch_pool.forward(avg_pool_same(x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionB {
    pub branch3x3: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(cin: usize, device: &Device) -> Self {
        Self {
            branch3x3: BasicConv2d::new(cin, 384, [3, 3], 2, [0, 0], device),
            branch3x3dbl_1: BasicConv2d::same(cin, 64, 1, device),
            branch3x3dbl_2: BasicConv2d::same(64, 96, 3, device),
            branch3x3dbl_3: BasicConv2d::new(96, 96, [3, 3], 2, [0, 0], device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let bd = chain(
            x.clone(),
            &[
                &self.branch3x3dbl_1,
                &self.branch3x3dbl_2,
                &self.branch3x3dbl_3,
            ],
        );
        Tensor::cat(vec![b3, bd, max_pool_down(x)], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionC {
    pub branch1x1: BasicConv2d,
    pub branch7x7_1: BasicConv2d,
    pub branch7x7_2: BasicConv2d,
    pub branch7x7_3: BasicConv2d,
    pub branch7x7dbl_1: BasicConv2d,
    pub branch7x7dbl_2: BasicConv2d,
    pub branch7x7dbl_3: BasicConv2d,
    pub branch7x7dbl_4: BasicConv2d,
    pub branch7x7dbl_5: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(cin: usize, c7: usize, device: &Device) -> Self {
        let row = |a, b| BasicConv2d::new(a, b, [1, 7], 1, [0, 3], device);
        let col = |a, b| BasicConv2d::new(a, b, [7, 1], 1, [3, 0], device);
        Self {
            branch1x1: BasicConv2d::same(cin, 192, 1, device),
            branch7x7_1: BasicConv2d::same(cin, c7, 1, device),
            branch7x7_2: row(c7, c7),
            branch7x7_3: col(c7, 192),
            branch7x7dbl_1: BasicConv2d::same(cin, c7, 1, device),
            branch7x7dbl_2: col(c7, c7),
            branch7x7dbl_3: row(c7, c7),
            branch7x7dbl_4: col(c7, c7),
            branch7x7dbl_5: row(c7, 192),
            branch_pool: BasicConv2d::same(cin, 192, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b7 = chain(
            x.clone(),
            &[&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3],
        );
        let bd = chain(
            x.clone(),
            &[
                &self.branch7x7dbl_1,
                &self.branch7x7dbl_2,
                &self.branch7x7dbl_3,
                &self.branch7x7dbl_4,
                &self.branch7x7dbl_5,
            ],
        );
        let bp = self.branch_pool.forward(avg_pool_same(x));
        Tensor::cat(vec![b1, b7, bd, bp], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionD {
    pub branch3x3_1: BasicConv2d,
    pub branch3x3_2: BasicConv2d,
    pub branch7x7x3_1: BasicConv2d,
    pub branch7x7x3_2: BasicConv2d,
    pub branch7x7x3_3: BasicConv2d,
    pub branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(cin: usize, device: &Device) -> Self {
        Self {
            branch3x3_1: BasicConv2d::same(cin, 192, 1, device),
            branch3x3_2: BasicConv2d::new(192, 320, [3, 3], 2, [0, 0], device),
            branch7x7x3_1: BasicConv2d::same(cin, 192, 1, device),
            branch7x7x3_2: BasicConv2d::new(192, 192, [1, 7], 1, [0, 3], device),
            branch7x7x3_3: BasicConv2d::new(192, 192, [7, 1], 1, [3, 0], device),
            branch7x7x3_4: BasicConv2d::new(192, 192, [3, 3], 2, [0, 0], device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = chain(x.clone(), &[&self.branch3x3_1, &self.branch3x3_2]);
        let b7 = chain(
            x.clone(),
            &[
                &self.branch7x7x3_1,
                &self.branch7x7x3_2,
                &self.branch7x7x3_3,
                &self.branch7x7x3_4,
            ],
        );
        Tensor::cat(vec![b3, b7, max_pool_down(x)], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionE {
    pub branch1x1: BasicConv2d,
    pub branch3x3_1: BasicConv2d,
    pub branch3x3_2a: BasicConv2d,
    pub branch3x3_2b: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3a: BasicConv2d,
    pub branch3x3dbl_3b: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionE {
    fn new(cin: usize, device: &Device) -> Self {
        let row = |a, b| BasicConv2d::new(a, b, [1, 3], 1, [0, 1], device);
        let col = |a, b| BasicConv2d::new(a, b, [3, 1], 1, [1, 0], device);
        Self {
            branch1x1: BasicConv2d::same(cin, 320, 1, device),
            branch3x3_1: BasicConv2d::same(cin, 384, 1, device),
            branch3x3_2a: row(384, 384),
            branch3x3_2b: col(384, 384),
            branch3x3dbl_1: BasicConv2d::same(cin, 448, 1, device),
            branch3x3dbl_2: BasicConv2d::same(448, 384, 3, device),
            branch3x3dbl_3a: row(384, 384),
            branch3x3dbl_3b: col(384, 384),
            branch_pool: BasicConv2d::same(cin, 192, 1, device),
        }
    }

    /// `max_pool`: the pool before `branch_pool` is a max pool (FID's `FIDInceptionE_2`), not an
    /// average pool.
    fn forward(&self, x: Tensor<4>, max_pool: bool) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = chain(x.clone(), &[&self.branch3x3dbl_1, &self.branch3x3dbl_2]);
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let pooled = if max_pool {
            max_pool_same(x)
        } else {
            avg_pool_same(x)
        };
        Tensor::cat(vec![b1, b3, bd, self.branch_pool.forward(pooled)], 1)
    }
}

/// pytorch-fid's tensor paths, with `Conv2d_`/`Mixed_` in lower case (the loader maps the names).
#[derive(Module, Debug)]
pub struct InceptionV3 {
    pub conv2d_1a_3x3: BasicConv2d,
    pub conv2d_2a_3x3: BasicConv2d,
    pub conv2d_2b_3x3: BasicConv2d,
    pub conv2d_3b_1x1: BasicConv2d,
    pub conv2d_4a_3x3: BasicConv2d,
    pub mixed_5b: InceptionA,
    pub mixed_5c: InceptionA,
    pub mixed_5d: InceptionA,
    pub mixed_6a: InceptionB,
    pub mixed_6b: InceptionC,
    pub mixed_6c: InceptionC,
    pub mixed_6d: InceptionC,
    pub mixed_6e: InceptionC,
    pub mixed_7a: InceptionD,
    pub mixed_7b: InceptionE,
    pub mixed_7c: InceptionE,
}

/// How a weights file wants its inputs and its last pool (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conventions {
    /// Inputs in [0, 1] instead of pytorch-fid's [-1, 1].
    pub unit_input: bool,
    /// The last block pools by max, as the FID graph does.
    pub last_max_pool: bool,
}

impl Conventions {
    pub const FID: Self = Self {
        unit_input: false,
        last_max_pool: true,
    };
}

/// A loaded feature network: the weights, their conventions and a name for messages and cache keys.
pub struct FeatureNet {
    pub net: InceptionV3,
    pub conventions: Conventions,
    /// What the weights are, from their metadata (`sundae.name`) or their file name.
    pub name: String,
    /// SHA-256 of the weights file: features cached with one file are never mixed with another's.
    pub hash: String,
}

impl InceptionV3 {
    pub fn new(device: &Device) -> Self {
        Self {
            conv2d_1a_3x3: BasicConv2d::new(3, 32, [3, 3], 2, [0, 0], device),
            conv2d_2a_3x3: BasicConv2d::new(32, 32, [3, 3], 1, [0, 0], device),
            conv2d_2b_3x3: BasicConv2d::same(32, 64, 3, device),
            conv2d_3b_1x1: BasicConv2d::same(64, 80, 1, device),
            conv2d_4a_3x3: BasicConv2d::new(80, 192, [3, 3], 1, [0, 0], device),
            mixed_5b: InceptionA::new(192, 32, device),
            mixed_5c: InceptionA::new(256, 64, device),
            mixed_5d: InceptionA::new(288, 64, device),
            mixed_6a: InceptionB::new(288, device),
            mixed_6b: InceptionC::new(768, 128, device),
            mixed_6c: InceptionC::new(768, 160, device),
            mixed_6d: InceptionC::new(768, 160, device),
            mixed_6e: InceptionC::new(768, 192, device),
            mixed_7a: InceptionD::new(768, device),
            mixed_7b: InceptionE::new(1280, device),
            mixed_7c: InceptionE::new(2048, device),
        }
    }

    /// Pooled features `[B, dims]` of images `[B, 3, 299, 299]` already scaled to the network's input
    /// range. `dims` is one of [`DIMS`]; the network stops at the block that gives it.
    pub fn features(&self, x: Tensor<4>, dims: usize, last_max_pool: bool) -> Tensor<2> {
        let pooled = |x: Tensor<4>| {
            let [b, c, _, _] = x.dims();
            adaptive_avg_pool2d(x, [1, 1]).reshape([b, c])
        };
        let x = self.conv2d_1a_3x3.forward(x);
        let x = self.conv2d_2a_3x3.forward(x);
        let x = max_pool_down(self.conv2d_2b_3x3.forward(x));
        if dims == 64 {
            return pooled(x);
        }
        let x = self.conv2d_3b_1x1.forward(x);
        let x = max_pool_down(self.conv2d_4a_3x3.forward(x));
        if dims == 192 {
            return pooled(x);
        }
        let x = self.mixed_5b.forward(x);
        let x = self.mixed_5c.forward(x);
        let x = self.mixed_5d.forward(x);
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6b.forward(x);
        let x = self.mixed_6c.forward(x);
        let x = self.mixed_6d.forward(x);
        let x = self.mixed_6e.forward(x);
        if dims == 768 {
            return pooled(x);
        }
        let x = self.mixed_7a.forward(x);
        let x = self.mixed_7b.forward(x, false);
        pooled(self.mixed_7c.forward(x, last_max_pool))
    }
}

/// The metadata of a safetensors file (empty when it has none or is no safetensors file).
fn safetensors_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        anyhow::anyhow!("{}: not a readable safetensors file ({e})", path.display())
    })?;
    Ok(metadata.metadata().clone().unwrap_or_default())
}

impl FeatureNet {
    /// Reads Inception-v3 weights: pytorch-fid's `.pth` (any PyTorch state dict with its names) or a
    /// `.safetensors` file with the same names. A file of another network is refused in one line
    /// naming the first tensor it lacks or holds in the wrong shape.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if !path.is_file() {
            bail!("feature weights {} do not exist", path.display());
        }
        let mut net = InceptionV3::new(device);
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let (result, metadata) = if is_safetensors {
            let metadata = safetensors_metadata(path)?;
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .with_key_remapping("^Conv2d_", "conv2d_")
                .with_key_remapping("^Mixed_", "mixed_")
                .validate(false)
                .allow_partial(true);
            let result = net.load_from(&mut store).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not readable Inception-v3 weights ({e})",
                    path.display()
                )
            })?;
            (result, metadata)
        } else {
            let mut store = PytorchStore::from_file(path)
                .with_key_remapping("^Conv2d_", "conv2d_")
                .with_key_remapping("^Mixed_", "mixed_")
                .validate(false)
                .allow_partial(true);
            let result = net.load_from(&mut store).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not a readable PyTorch state dict ({})",
                    path.display(),
                    e.to_string().lines().next().unwrap_or_default()
                )
            })?;
            (result, HashMap::new())
        };
        check_applied(&result, path, false)
            .context("not Inception-v3 weights as pytorch-fid names them")?;
        let conventions = Conventions {
            unit_input: metadata.get("sundae.input").is_some_and(|v| v == "unit"),
            last_max_pool: metadata.get("sundae.last_pool").is_none_or(|v| v != "avg"),
        };
        let name = metadata.get("sundae.name").cloned().unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(Self {
            net: net.no_grad(),
            conventions,
            name,
            hash: crate::data::latents::file_hash(path)?,
        })
    }

    /// Features `[B, dims]` of 8-bit RGB images (any size: each is resized to 299x299 first).
    pub fn features(&self, images: &[image::RgbImage], dims: usize, device: &Device) -> Vec<f32> {
        if images.is_empty() {
            return Vec::new();
        }
        let (scale, shift) = if self.conventions.unit_input {
            (1.0 / 255.0, 0.0)
        } else {
            (2.0 / 255.0, -1.0)
        };
        let side = INPUT_SIDE;
        let mut flat = Vec::with_capacity(images.len() * 3 * side * side);
        for image in images {
            flat.extend(
                super::resize::bilinear_chw(image, side, side)
                    .into_iter()
                    .map(|v| v * scale + shift),
            );
        }
        let x = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(flat, [images.len(), 3, side, side]),
            device,
        );
        self.net
            .features(x, dims, self.conventions.last_max_pool)
            .into_data()
            .iter::<f32>()
            .collect()
    }
}

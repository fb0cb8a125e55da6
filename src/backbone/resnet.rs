//! ResNet-18 / ResNet-50 backbones (He et al. 2016), with parameter paths mirroring
//! torchvision (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`, ...).
//!
//! Two stems: the ImageNet one (7x7 stride-2 convolution and max-pool) for large images, and
//! the CIFAR one (3x3 stride-1 convolution, no max-pool) for 32x32 inputs, as in SimCLR's CIFAR
//! experiments. A width multiplier scales every stage's channels for CPU-sized runs.
use serde::{Deserialize, Serialize};
use tch::{nn, nn::ModuleT, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Depth {
    Resnet18,
    Resnet50,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Stem {
    /// 3x3 stride-1 convolution, no max-pool (small images, e.g. 32x32).
    Cifar,
    /// 7x7 stride-2 convolution and 3x3 stride-2 max-pool (large images).
    Imagenet,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    pub depth: Depth,
    pub stem: Stem,
    /// Channel multiplier of every stage (1.0 = the standard 64-128-256-512).
    pub width: f64,
    /// Input channels (1 for grey images, 3 for colour).
    pub in_channels: i64,
}

impl ResNetConfig {
    /// Channels of the four stages.
    pub fn stage_channels(&self) -> [i64; 4] {
        [64, 128, 256, 512].map(|c| ((c as f64 * self.width).round() as i64).max(4))
    }

    /// Dimension of the pooled features.
    pub fn feat_dim(&self) -> i64 {
        let last = self.stage_channels()[3];
        match self.depth {
            Depth::Resnet18 => last,
            Depth::Resnet50 => last * 4,
        }
    }
}

/// A convolution without bias that computes in its input's precision: for bfloat16 inputs the
/// f32 weights are cast on the fly (a differentiable cast, so their gradients stay f32).
#[derive(Debug)]
struct Conv {
    ws: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut w = self.ws.to_kind(x.kind());
        if prefers_channels_last(x) {
            w = channels_last(&w);
        }
        x.conv2d(&w, None::<&Tensor>, [self.stride; 2], [self.padding; 2], [1, 1], 1)
    }
}

/// Whether convolutions on `x` run faster on channels-last tensors: on the CPU (oneDNN:
/// ResNet-18 at width 0.5 on 32x32 images trains about 1.2x faster in f32 and 1.2x in
/// bfloat16 on our 2-core machine) and for bfloat16 on GPUs (tensor cores).
fn prefers_channels_last(x: &Tensor) -> bool {
    x.device() == tch::Device::Cpu || x.kind() == tch::Kind::BFloat16
}

/// The same (N, C, H, W) tensor stored as N, H, W, C (PyTorch's channels-last memory format);
/// convolutions and batch norm keep that layout for their outputs.
fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Conv {
    let layer = nn::conv2d(p, c_in, c_out, k, nn::ConvConfig { stride, padding, bias: false, ..Default::default() });
    Conv { ws: layer.ws, stride, padding }
}

#[derive(Debug)]
struct Downsample {
    conv: Conv,
    bn: nn::BatchNorm,
}

#[derive(Debug)]
struct Block {
    convs: Vec<(Conv, nn::BatchNorm)>,
    downsample: Option<Downsample>,
}

impl Block {
    fn new(p: &nn::Path, c_in: i64, planes: i64, stride: i64, bottleneck: bool) -> Self {
        let expansion = if bottleneck { 4 } else { 1 };
        let c_out = planes * expansion;
        let convs = if bottleneck {
            vec![
                (conv(p / "conv1", c_in, planes, 1, 1, 0), nn::batch_norm2d(p / "bn1", planes, Default::default())),
                (conv(p / "conv2", planes, planes, 3, stride, 1), nn::batch_norm2d(p / "bn2", planes, Default::default())),
                (conv(p / "conv3", planes, c_out, 1, 1, 0), nn::batch_norm2d(p / "bn3", c_out, Default::default())),
            ]
        } else {
            vec![
                (conv(p / "conv1", c_in, planes, 3, stride, 1), nn::batch_norm2d(p / "bn1", planes, Default::default())),
                (conv(p / "conv2", planes, planes, 3, 1, 1), nn::batch_norm2d(p / "bn2", planes, Default::default())),
            ]
        };
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample {
            conv: conv(p / "downsample" / "0", c_in, c_out, 1, stride, 0),
            bn: nn::batch_norm2d(p / "downsample" / "1", c_out, Default::default()),
        });
        Block { convs, downsample }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        let last = self.convs.len() - 1;
        for (k, (c, bn)) in self.convs.iter().enumerate() {
            // Batch norm keeps f32 statistics and parameters for bfloat16 inputs.
            y = c.forward(&y).apply_t(bn, train);
            if k != last {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some(d) => d.conv.forward(x).apply_t(&d.bn, train),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// The backbone without its classification layer: images (N, C, H, W) -> pooled features (N, D).
/// It computes in the precision of its input: f32, or bfloat16 (mixed precision, see
/// `Precision`).
#[derive(Debug)]
pub struct ResNet {
    pub config: ResNetConfig,
    conv1: Conv,
    bn1: nn::BatchNorm,
    layers: Vec<Vec<Block>>,
}

impl ResNet {
    pub fn new(p: &nn::Path, config: &ResNetConfig) -> Self {
        let channels = config.stage_channels();
        let (conv1, stem_out) = match config.stem {
            Stem::Cifar => (conv(p / "conv1", config.in_channels, channels[0], 3, 1, 1), channels[0]),
            Stem::Imagenet => (conv(p / "conv1", config.in_channels, channels[0], 7, 2, 3), channels[0]),
        };
        let bn1 = nn::batch_norm2d(p / "bn1", stem_out, Default::default());
        let (blocks, bottleneck) = match config.depth {
            Depth::Resnet18 => ([2, 2, 2, 2], false),
            Depth::Resnet50 => ([3, 4, 6, 3], true),
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let mut c_in = stem_out;
        let mut layers = Vec::new();
        for (stage, (&planes, &count)) in channels.iter().zip(&blocks).enumerate() {
            let lp = p / format!("layer{}", stage + 1);
            let mut layer = Vec::new();
            for b in 0..count {
                let stride = if b == 0 && stage > 0 { 2 } else { 1 };
                layer.push(Block::new(&(&lp / b.to_string()), c_in, planes, stride, bottleneck));
                c_in = planes * expansion;
            }
            layers.push(layer);
        }
        ResNet { config: config.clone(), conv1, bn1, layers }
    }

    pub fn feat_dim(&self) -> i64 {
        self.config.feat_dim()
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = if prefers_channels_last(x) { channels_last(x) } else { x.shallow_clone() };
        let mut y = self.conv1.forward(&x).apply_t(&self.bn1, train).relu();
        if self.config.stem == Stem::Imagenet {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for layer in &self.layers {
            for block in layer {
                y = block.forward_t(&y, train);
            }
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_names() {
        for (depth, dim) in [(Depth::Resnet18, 256), (Depth::Resnet50, 1024)] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let config = ResNetConfig { depth, stem: Stem::Cifar, width: 0.5, in_channels: 3 };
            let net = ResNet::new(&vs.root(), &config);
            let y = net.forward_t(&Tensor::zeros([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)), false);
            assert_eq!(y.size(), [2, dim]);
            let names: Vec<String> = vs.variables().into_keys().collect();
            assert!(names.contains(&"layer2.0.downsample.0.weight".to_string()), "{names:?}");
            assert!(names.contains(&"layer1.1.bn2.running_mean".to_string()) || names.contains(&"layer1.1.bn2.weight".to_string()));
        }
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let config = ResNetConfig { depth: Depth::Resnet18, stem: Stem::Imagenet, width: 0.25, in_channels: 1 };
        let y = ResNet::new(&vs.root(), &config).forward_t(&Tensor::zeros([1, 1, 96, 96], (tch::Kind::Float, tch::Device::Cpu)), true);
        assert_eq!(y.size(), [1, 128]);
    }
}

//! A pretrained image encoder brought as TorchScript (`torch.jit.trace`/`script` + `torch.jit.save`
//! of a torchvision, timm or DINO model): stage I without training.
//!
//! Images are prepared the way such models were trained: the centred square resized to
//! `image_size` (bilinear), scaled to [0, 1], normalised per channel (ImageNet statistics unless
//! told otherwise), grey images repeated over three channels for a colour model. The model must
//! return one (N, D) feature matrix; D is read from its output. Every libtorch call on the
//! model goes through a fallible (`f_`) variant, so a wrong model is an error naming the file,
//! not a crash.
use crate::data::augment;
use crate::data::features::l2_normalize;
use crate::data::images::ImageSet;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tch::{CModule, IValue, Kind, Tensor};

/// ImageNet's per-channel statistics (torchvision's `Normalize` for pretrained models).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `--normalize`: how [0, 1] pixels are shifted and scaled before the model sees them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum InputNormalization {
    /// ImageNet mean and standard deviation (torchvision, timm and DINO models).
    Imagenet,
    /// Pixels in [0, 1] as they are.
    None,
    /// One mean and one standard deviation per channel.
    Custom { mean: Vec<f32>, std: Vec<f32> },
}

impl FromStr for InputNormalization {
    type Err = String;

    /// `imagenet`, `none`, or `MEAN,STD` with comma lists per channel, e.g.
    /// `0.5,0.5,0.5,0.25,0.25,0.25` (three means, then three standard deviations) or `0.5,0.25`.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "imagenet" => return Ok(InputNormalization::Imagenet),
            "none" => return Ok(InputNormalization::None),
            _ => {}
        }
        let values = text
            .split(',')
            .map(|v| v.trim().parse::<f32>().map_err(|_| format!("'{}' is not a number", v.trim())))
            .collect::<std::result::Result<Vec<f32>, String>>()
            .map_err(|e| format!("--normalize {text}: {e}; expected imagenet, none, or MEAN,STD (comma lists per channel)"))?;
        if values.is_empty() || values.len() % 2 != 0 {
            return Err(format!("--normalize {text}: {} numbers; expected as many means as standard deviations (e.g. 0.5,0.5,0.5,0.25,0.25,0.25)", values.len()));
        }
        let (mean, std) = values.split_at(values.len() / 2);
        if let Some(s) = std.iter().find(|s| !(**s > 0.0) || !s.is_finite()) {
            return Err(format!("--normalize {text}: standard deviation {s} must be positive"));
        }
        Ok(InputNormalization::Custom { mean: mean.to_vec(), std: std.to_vec() })
    }
}

impl std::fmt::Display for InputNormalization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputNormalization::Imagenet => f.write_str("imagenet"),
            InputNormalization::None => f.write_str("none"),
            InputNormalization::Custom { mean, std } => {
                let all: Vec<String> = mean.iter().chain(std).map(|v| v.to_string()).collect();
                f.write_str(&all.join(","))
            }
        }
    }
}

impl From<InputNormalization> for String {
    fn from(n: InputNormalization) -> String {
        n.to_string()
    }
}

impl TryFrom<String> for InputNormalization {
    type Error = String;
    fn try_from(text: String) -> std::result::Result<Self, String> {
        text.parse()
    }
}

impl InputNormalization {
    /// Channels the statistics are for (None: any).
    pub fn channels(&self) -> Option<usize> {
        match self {
            InputNormalization::Imagenet => Some(3),
            InputNormalization::None => None,
            InputNormalization::Custom { mean, .. } => Some(mean.len()),
        }
    }

    /// (mean, std) for `channels` channels.
    fn statistics(&self, channels: usize) -> (Vec<f32>, Vec<f32>) {
        match self {
            InputNormalization::Imagenet => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
            InputNormalization::None => (vec![0.0; channels], vec![1.0; channels]),
            InputNormalization::Custom { mean, std } => (mean.clone(), std.clone()),
        }
    }
}

/// How images are turned into model inputs.
#[derive(Clone, Debug)]
pub struct Preprocessing {
    /// Side of the square input.
    pub image_size: usize,
    pub normalize: InputNormalization,
    pub batch_size: usize,
    /// Average (N, C, H, W) feature maps over H and W instead of refusing them.
    pub global_pool: bool,
}

/// A loaded TorchScript encoder.
pub struct TorchScriptEncoder {
    module: CModule,
    path: PathBuf,
    device: tch::Device,
    /// Input channels of the first 4-D parameter (the first convolution or patch embedding).
    in_channels: Option<usize>,
    /// Kind of the model's floating-point parameters (inputs are cast to it).
    input_kind: Kind,
}

impl TorchScriptEncoder {
    /// Loads `path` onto `device` in evaluation mode.
    pub fn load(path: &Path, device: tch::Device) -> Result<Self> {
        std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            Error::format(path, format!("not a TorchScript model (expected the file torch.jit.save writes): {}", first_line(&e.to_string())))
        })?;
        module.f_set_eval().map_err(|e| Error::format(path, format!("cannot switch the model to evaluation mode: {}", first_line(&e.to_string()))))?;
        let parameters = module.named_parameters().map_err(|e| Error::format(path, format!("cannot list the model's parameters: {}", first_line(&e.to_string()))))?;
        let in_channels = parameters.iter().map(|(_, t)| t.size()).find(|s| s.len() == 4).map(|s| s[1] as usize);
        let input_kind = parameters.iter().map(|(_, t)| t.kind()).find(|k| matches!(k, Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16)).unwrap_or(Kind::Float);
        Ok(TorchScriptEncoder { module, path: path.to_path_buf(), device, in_channels, input_kind })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The channels the model takes, as far as its first 4-D parameter tells.
    pub fn in_channels(&self) -> Option<usize> {
        self.in_channels
    }

    /// The model's raw output for one prepared batch (B, C, S, S), checked to be (B, D) f32.
    pub fn forward(&self, x: &Tensor, global_pool: bool) -> Result<Tensor> {
        let x = x.f_to_device(self.device)?.f_to_kind(self.input_kind)?;
        let batch = x.size()[0];
        let output = self.module.forward_is(&[IValue::Tensor(x)]).map_err(|e| {
            Error::format(&self.path, format!("the model's forward pass failed: {}", first_line(&e.to_string())))
        })?;
        let y = match output {
            IValue::Tensor(t) => t,
            other => {
                return Err(Error::format(&self.path, format!("the model returned {}, expected one (N, D) feature tensor", ivalue_kind(&other))));
            }
        };
        let shape = y.size();
        let y = match shape.len() {
            2 => y,
            4 if global_pool => y.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float)?,
            _ => {
                let hint = if shape.len() == 4 { " (feature maps: pass --global-pool to average them over space, or export the model up to its pooled features)" } else { "" };
                return Err(Error::Shape {
                    what: format!("output of the TorchScript model {}", self.path.display()),
                    expected: "(N, D) features, one row per image".into(),
                    got: format!("shape {shape:?}{hint}"),
                });
            }
        };
        if y.size()[0] != batch {
            return Err(Error::Shape {
                what: format!("output of the TorchScript model {}", self.path.display()),
                expected: format!("{batch} rows (one per input image)"),
                got: format!("shape {:?}", y.size()),
            });
        }
        Ok(y.f_to_kind(Kind::Float)?.f_to_device(tch::Device::Cpu)?)
    }

    /// The channel count the images are fed with: the model's when known, else the
    /// normalisation's, else the images'. Grey images go to a colour model repeated.
    fn input_channels(&self, set: &ImageSet, normalize: &InputNormalization) -> Result<usize> {
        let wanted = self.in_channels.or(normalize.channels()).unwrap_or(set.channels);
        if wanted != set.channels && !(set.channels == 1 && wanted == 3) {
            return Err(Error::Shape {
                what: format!("input channels of {}", self.path.display()),
                expected: format!("{} (the images' channels; grey images are repeated for 3-channel models)", set.channels),
                got: wanted.to_string(),
            });
        }
        if let Some(n) = normalize.channels().filter(|&n| n != wanted) {
            return Err(Error::Shape {
                what: format!("--normalize {normalize}"),
                expected: format!("{wanted} means and {wanted} standard deviations (the model's input channels)"),
                got: format!("{n} channel(s)"),
            });
        }
        Ok(wanted)
    }

    /// L2-normalised features (N, D) of every image in `set`, on the CPU; `progress` hears of
    /// each finished batch.
    pub fn extract(&self, set: &ImageSet, prep: &Preprocessing, mut progress: impl FnMut(usize)) -> Result<Tensor> {
        if prep.image_size < 1 || prep.batch_size < 1 {
            return Err(Error::invalid("image_size/batch_size", format!("{}/{}", prep.image_size, prep.batch_size), "at least 1"));
        }
        let channels = self.input_channels(set, &prep.normalize)?;
        let (mean, std) = prep.normalize.statistics(channels);
        let shape = |t: Vec<f32>| Tensor::from_slice(&t).view([1, channels as i64, 1, 1]);
        let (mean, std) = (shape(mean), shape(std));
        let s = prep.image_size as i64;
        let mut chunks = Vec::new();
        let _guard = tch::no_grad_guard();
        for start in (0..set.count).step_by(prep.batch_size) {
            let end = (start + prep.batch_size).min(set.count);
            let mut buf = Vec::with_capacity((end - start) * set.channels * prep.image_size * prep.image_size);
            for i in start..end {
                buf.extend(augment::centre_crop(set, i, prep.image_size));
            }
            let mut x = Tensor::from_slice(&buf).view([(end - start) as i64, set.channels as i64, s, s]);
            if channels != set.channels {
                x = x.f_expand([-1, channels as i64, -1, -1], false)?;
            }
            let features = self.forward(&((x - &mean) / &std), prep.global_pool)?;
            if features.isfinite().logical_not().any().int64_value(&[]) != 0 {
                return Err(Error::NonFinite { what: format!("features of {} for images {start}..{end}", self.path.display()), row: 0, col: 0 });
            }
            chunks.push(l2_normalize(&features));
            progress(end - start);
        }
        if chunks.is_empty() {
            return Err(Error::invalid("images", 0, "at least one image"));
        }
        Ok(Tensor::f_cat(&chunks, 0)?)
    }
}

/// The first sentence of libtorch's message (the rest is advice about checkpoints and a C++
/// backtrace).
fn first_line(text: &str) -> &str {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(text);
    line.split_once(". ").map_or(line, |(first, _)| first)
}

fn ivalue_kind(value: &IValue) -> &'static str {
    match value {
        IValue::Tuple(_) => "a tuple",
        IValue::GenericList(_) | IValue::TensorList(_) => "a list",
        IValue::GenericDict(_) => "a dict",
        IValue::None => "None",
        _ => "a non-tensor value",
    }
}

/// SHA-256 of a file, hex: the model's identity in a run's cache key.
pub fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_parses_names_and_lists() {
        assert_eq!("imagenet".parse::<InputNormalization>(), Ok(InputNormalization::Imagenet));
        assert_eq!("None".parse::<InputNormalization>(), Ok(InputNormalization::None));
        let custom = "0.5,0.4,0.3,0.2,0.25,0.3".parse::<InputNormalization>().unwrap();
        assert_eq!(custom, InputNormalization::Custom { mean: vec![0.5, 0.4, 0.3], std: vec![0.2, 0.25, 0.3] });
        assert_eq!(custom.channels(), Some(3));
        assert_eq!(custom.to_string().parse::<InputNormalization>().unwrap(), custom);
        assert!("0.5,0.4,0.3".parse::<InputNormalization>().unwrap_err().contains("3 numbers"));
        assert!("0.5,x".parse::<InputNormalization>().unwrap_err().contains("'x'"));
        assert!("0.5,0".parse::<InputNormalization>().unwrap_err().contains("positive"));
    }

    #[test]
    fn sha256_of_a_known_text() {
        let path = std::env::temp_dir().join(format!("zl-sha-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(file_sha256(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        std::fs::remove_file(path).ok();
    }
}

//! `zerolabel features --torchscript`: a pretrained encoder's features are its own outputs,
//! L2-normalised, for known inputs; wrong models and wrong settings are clear errors.
//!
//! The fixtures (tests/fixtures/tiny_*.pt and their outputs in tiny_expected.json) were written
//! once by scripts/make_torchscript_fixture.py with torch 2.13, for the images `pixel` defines.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use zerolabel::data::features::load_features;

const COUNT: usize = 7;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zl-ts-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Image k's pixel (row y, column x, channel c), as in scripts/make_torchscript_fixture.py.
fn pixel(k: usize, y: usize, x: usize, c: usize) -> u8 {
    ((97 * k + 13 * x + 3 * y * y + 71 * c + x * y) % 256) as u8
}

/// A CIFAR-10 binary folder: images 0..5 in data_batch_1..5 (one each), 5 and 6 in test_batch,
/// label = image index; `grey` writes the first channel into all three planes.
fn write_cifar(dir: &Path, grey: bool) {
    let record = |k: usize| {
        let mut r = vec![k as u8];
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    r.push(pixel(k, y, x, if grey { 0 } else { c }));
                }
            }
        }
        r
    };
    for b in 0..5 {
        std::fs::write(dir.join(format!("data_batch_{}.bin", b + 1)), record(b)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), [record(5), record(6)].concat()).unwrap();
}

/// The same images' first channel as an MNIST-layout folder (uncompressed IDX).
fn write_idx(dir: &Path) {
    let split = |name: &str, images: std::ops::Range<usize>| {
        let n = images.len() as u32;
        let mut data = [0x0803u32, n, 32, 32].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        let mut labels = [0x0801u32, n].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        for k in images {
            data.extend((0..32 * 32).map(|p| pixel(k, p / 32, p % 32, 0)));
            labels.push(k as u8);
        }
        std::fs::write(dir.join(format!("{name}-images-idx3-ubyte")), data).unwrap();
        std::fs::write(dir.join(format!("{name}-labels-idx1-ubyte")), labels).unwrap();
    };
    split("train", 0..5);
    split("t10k", 5..COUNT);
}

fn zerolabel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zerolabel")).args(args).args(["--device", "cpu", "--quiet"]).output().unwrap()
}

/// Runs `features` and returns stderr, asserting a clean failure (exit code 2, no panic).
fn expect_error(args: &[&str]) -> String {
    let output = zerolabel(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "expected exit code 2 for {args:?}; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    stderr
}

fn features_args<'a>(data: &'a str, format: &'a str, model: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["features", "--format", format, "--data", data, "--torchscript", model, "--image-size", "24", "--out", out]
}

/// Rows of train.safetensors then test.safetensors, with their labels.
fn written_features(out: &Path) -> (Vec<Vec<f32>>, Vec<i64>) {
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for name in ["train.safetensors", "test.safetensors"] {
        let file = load_features(&out.join(name), None).unwrap();
        rows.extend(Vec::<Vec<f32>>::try_from(&file.features).unwrap());
        labels.extend(file.labels.expect("labels written beside the features"));
    }
    (rows, labels)
}

/// The fixture's expected outputs under `key`, each row L2-normalised.
fn expected_rows(key: &str) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(fixture("tiny_expected.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows: Vec<Vec<f32>> = serde_json::from_value(json[key].clone()).unwrap();
    rows.into_iter()
        .map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            r.iter().map(|v| v / norm).collect()
        })
        .collect()
}

fn max_abs_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).flat_map(|(x, y)| {
        assert_eq!(x.len(), y.len());
        x.iter().zip(y).map(|(p, q)| (p - q).abs())
    })
    .fold(0.0, f32::max)
}

#[test]
fn torchscript_features_equal_the_models_own_outputs() {
    let dir = workdir("equal");
    let data = dir.join("cifar");
    std::fs::create_dir_all(&data).unwrap();
    write_cifar(&data, false);
    let out = dir.join("out");
    let model = fixture("tiny_encoder.pt");
    let mut args = features_args(data.to_str().unwrap(), "cifar10", model.to_str().unwrap(), out.to_str().unwrap());
    args.extend(["--normalize", "imagenet", "--batch-size", "3"]);
    let output = zerolabel(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (rows, labels) = written_features(&out);
    assert_eq!(labels, (0..COUNT as i64).collect::<Vec<_>>());
    assert_eq!(rows[0].len(), 5, "the output dimension comes from the model");
    let difference = max_abs_difference(&rows, &expected_rows("encoder_outputs"));
    eprintln!("largest difference from the model's own (normalised) outputs: {difference:e}");
    assert!(difference < 1e-5, "features differ from the model's outputs by {difference}");
    // A wrong normalisation must be noticed by this comparison.
    let other = dir.join("out-none");
    let mut args = features_args(data.to_str().unwrap(), "cifar10", model.to_str().unwrap(), other.to_str().unwrap());
    args.extend(["--normalize", "none"]);
    assert!(zerolabel(&args).status.success());
    assert!(max_abs_difference(&written_features(&other).0, &expected_rows("encoder_outputs")) > 1e-3);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn feature_maps_are_refused_naming_the_shape_or_averaged_on_request() {
    let dir = workdir("maps");
    write_cifar(&dir, false);
    let model = fixture("tiny_maps.pt");
    let out = dir.join("out");
    let args = features_args(dir.to_str().unwrap(), "cifar10", model.to_str().unwrap(), out.to_str().unwrap());
    let e = expect_error(&args);
    assert!(e.contains("tiny_maps.pt") && e.contains("[5, 4, 24, 24]") && e.contains("(N, D)") && e.contains("--global-pool"), "{e}");
    let mut pooled = args.clone();
    pooled.push("--global-pool");
    let output = zerolabel(&pooled);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let difference = max_abs_difference(&written_features(&out).0, &expected_rows("maps_outputs_averaged_over_space"));
    assert!(difference < 1e-5, "pooled maps differ by {difference}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_file_that_is_not_a_model_is_a_clean_error() {
    let dir = workdir("junk");
    write_cifar(&dir, false);
    let junk = dir.join("junk-model.pt");
    std::fs::write(&junk, b"this is not a TorchScript archive").unwrap();
    let out = dir.join("out");
    let e = expect_error(&features_args(dir.to_str().unwrap(), "cifar10", junk.to_str().unwrap(), out.to_str().unwrap()));
    assert!(e.contains("junk-model.pt") && e.contains("not a TorchScript model"), "{e}");
    assert!(e.lines().count() <= 3, "one short message, not a libtorch backtrace: {e}");
    let missing = dir.join("missing.pt");
    let e = expect_error(&features_args(dir.to_str().unwrap(), "cifar10", missing.to_str().unwrap(), out.to_str().unwrap()));
    assert!(e.contains("missing.pt"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn grey_images_are_repeated_for_a_colour_model() {
    let dir = workdir("grey");
    let (idx, cifar) = (dir.join("idx"), dir.join("cifar"));
    std::fs::create_dir_all(&idx).unwrap();
    std::fs::create_dir_all(&cifar).unwrap();
    write_idx(&idx);
    write_cifar(&cifar, true);
    let model = fixture("tiny_encoder.pt");
    let (out_grey, out_rgb) = (dir.join("out-grey"), dir.join("out-rgb"));
    for (data, format, out) in [(&idx, "idx", &out_grey), (&cifar, "cifar10", &out_rgb)] {
        let output = zerolabel(&features_args(data.to_str().unwrap(), format, model.to_str().unwrap(), out.to_str().unwrap()));
        assert!(output.status.success(), "{format}: {}", String::from_utf8_lossy(&output.stderr));
    }
    let difference = max_abs_difference(&written_features(&out_grey).0, &written_features(&out_rgb).0);
    assert!(difference < 1e-6, "grey images repeated over 3 channels differ from equal RGB planes by {difference}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn wrong_settings_are_clear_errors() {
    let dir = workdir("settings");
    write_cifar(&dir, false);
    let model = fixture("tiny_encoder.pt");
    let out = dir.join("out");
    let base = features_args(dir.to_str().unwrap(), "cifar10", model.to_str().unwrap(), out.to_str().unwrap());
    let mut two_channels = base.clone();
    two_channels.extend(["--normalize", "0.5,0.5,0.25,0.25"]);
    let e = expect_error(&two_channels);
    assert!(e.contains("--normalize") && e.contains("3 means"), "{e}");
    let mut odd = base.clone();
    odd.extend(["--normalize", "0.5,0.5,0.25"]);
    assert!(expect_error(&odd).contains("as many means as standard deviations"));
    let mut both = base.clone();
    both.extend(["--checkpoint", "x.safetensors"]);
    assert!(expect_error(&both).contains("cannot be used with"));
    let no_size: Vec<&str> = base.iter().copied().filter(|a| *a != "--image-size" && *a != "24").collect();
    assert!(expect_error(&no_size).contains("--image-size"));
    std::fs::remove_dir_all(dir).ok();
}

//! Stage I checkpoints: a run interrupted in its second epoch and resumed gives bit-exactly the
//! weights of an uninterrupted run of the same seed (CPU), and the loss falls on real images.
use std::path::PathBuf;
use tch::Tensor;
use zerolabel::backbone::pretrain::{self, PretrainOptions};
use zerolabel::backbone::resnet::{Depth, ResNetConfig, Stem};
use zerolabel::backbone::simclr::{self, SimclrModel, SimclrParams};
use zerolabel::data::images::ImageSet;

fn tiny_set() -> ImageSet {
    let (n, s) = (48usize, 16usize);
    let pixels: Vec<u8> = (0..n * s * s * 3).map(|k| ((k * 7 + k / 97 * 13) % 256) as u8).collect();
    ImageSet { pixels, count: n, height: s, width: s, channels: 3, labels: None, class_names: vec![] }
}

fn config() -> ResNetConfig {
    ResNetConfig { depth: Depth::Resnet18, stem: Stem::Cifar, width: 0.125, in_channels: 3 }
}

fn params() -> SimclrParams {
    SimclrParams { batch_size: 16, epochs: 2, image_size: 16, ..SimclrParams::default() }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zl-resume-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

fn weights(path: &std::path::Path) -> Vec<(String, Tensor)> {
    let meta = simclr::read_meta(path).unwrap();
    let mut model = SimclrModel::new(&meta.backbone, &meta.params, tch::Device::Cpu);
    simclr::load_checkpoint(path, &mut model, None).unwrap();
    let mut v: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resume_after_an_interrupted_epoch_is_bit_exact() {
    tch::set_num_threads(1);
    let set = tiny_set();
    // Uninterrupted: 2 epochs.
    let full = dir("full");
    let o = PretrainOptions { out: &full, seed: 3, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    let done = pretrain::pretrain(&set, &config(), &params(), &o).unwrap();
    assert!(!done.interrupted && done.epochs_run == 2);

    // Interrupted after 4 steps (epoch 1 has 3), i.e. inside epoch 2; then resumed.
    let part = dir("part");
    let o = PretrainOptions { out: &part, seed: 3, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: Some(4), max_seconds: None };
    let stopped = pretrain::pretrain(&set, &config(), &params(), &o).unwrap();
    assert!(stopped.interrupted);
    assert_eq!(simclr::read_meta(&stopped.checkpoint).unwrap().epoch, 1);
    let o = PretrainOptions { out: &part, seed: 3, resume: true, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    let resumed = pretrain::pretrain(&set, &config(), &params(), &o).unwrap();
    assert_eq!(resumed.epochs_run, 1);

    let (a, b) = (weights(&done.checkpoint), weights(&resumed.checkpoint));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x.equal(y), "{name} differs between the uninterrupted and the resumed run");
    }
    // A different seed gives different weights (the comparison can fail).
    let other = dir("other");
    let o = PretrainOptions { out: &other, seed: 4, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    let c = weights(&pretrain::pretrain(&set, &config(), &params(), &o).unwrap().checkpoint);
    assert!(a.iter().zip(&c).any(|((_, x), (_, y))| !x.equal(y)));
    // Resuming with other parameters is refused.
    let o = PretrainOptions { out: &part, seed: 3, resume: true, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    let changed = SimclrParams { learning_rate: 5e-4, ..params() };
    let err = pretrain::pretrain(&set, &config(), &changed, &o).unwrap_err().to_string();
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    for d in [full, part, other] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// A cosine schedule is shaped by its epoch budget: resuming it under another budget is refused
/// (a constant rate may grow its budget), and the learning rate it logged falls epoch by epoch.
#[test]
fn cosine_schedule_is_tied_to_its_budget() {
    tch::set_num_threads(1);
    let set = tiny_set();
    let cosine = SimclrParams { lr_schedule: simclr::LrSchedule::Cosine, ..params() };
    let out = dir("cosine");
    let o = PretrainOptions { out: &out, seed: 1, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    pretrain::pretrain(&set, &config(), &cosine, &o).unwrap();
    let log = std::fs::read_to_string(out.join("pretrain_log.jsonl")).unwrap();
    let rates: Vec<f64> = log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["lr"].as_f64().unwrap()).collect();
    assert!(rates.len() == 2 && rates[0] < cosine.learning_rate && rates[1] < rates[0], "{rates:?}");

    let o = PretrainOptions { resume: true, ..o };
    let longer = SimclrParams { epochs: 3, ..cosine.clone() };
    let e = pretrain::pretrain(&set, &config(), &longer, &o).unwrap_err().to_string();
    assert!(e.contains("cosine schedule over 2 epochs") && e.contains("checkpoint.safetensors"), "{e}");
    let constant_out = dir("constant");
    let fresh = PretrainOptions { out: &constant_out, seed: 1, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    pretrain::pretrain(&set, &config(), &params(), &fresh).unwrap();
    let constant = SimclrParams { epochs: 3, ..params() };
    assert_eq!(pretrain::pretrain(&set, &config(), &constant, &PretrainOptions { resume: true, ..fresh }).unwrap().epochs_run, 1);
}

/// `--max-minutes`: a budget smaller than one epoch stops cleanly after the first epoch, with
/// its checkpoint written; resuming continues from there to the epoch budget.
#[test]
fn a_time_budget_stops_after_an_epoch_with_its_checkpoint() {
    tch::set_num_threads(1);
    let set = tiny_set();
    let out = dir("budget");
    let three = SimclrParams { epochs: 3, ..params() };
    let o = PretrainOptions { out: &out, seed: 2, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: Some(1e-3) };
    let outcome = pretrain::pretrain(&set, &config(), &three, &o).unwrap();
    assert!(outcome.interrupted && outcome.epochs_run == 1, "{outcome:?}");
    assert_eq!(simclr::read_meta(&outcome.checkpoint).unwrap().epoch, 1);
    let o = PretrainOptions { resume: true, max_seconds: None, ..o };
    let rest = pretrain::pretrain(&set, &config(), &three, &o).unwrap();
    assert!(!rest.interrupted && rest.epochs_run == 2, "{rest:?}");
}

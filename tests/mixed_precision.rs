//! bfloat16 mixed precision in stage I: the projections stay close to the f32 ones for the same
//! weights, gradients and optimiser state stay f32, and a resumed bf16 run is bit-exact too.
use std::path::PathBuf;
use tch::{Kind, Tensor};
use zerolabel::backbone::pretrain::{self, PretrainOptions};
use zerolabel::backbone::resnet::{Depth, ResNetConfig, Stem};
use zerolabel::backbone::simclr::{self, Precision, SimclrModel, SimclrParams};
use zerolabel::data::images::ImageSet;

fn config() -> ResNetConfig {
    ResNetConfig { depth: Depth::Resnet18, stem: Stem::Cifar, width: 0.125, in_channels: 3 }
}

fn params() -> SimclrParams {
    SimclrParams { batch_size: 16, epochs: 2, image_size: 16, precision: Precision::Bf16, ..SimclrParams::default() }
}

#[test]
fn bf16_projections_follow_f32_and_gradients_stay_f32() {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let model = SimclrModel::new(&config(), &params(), tch::Device::Cpu);
    let x = Tensor::randn([16, 3, 16, 16], (Kind::Float, tch::Device::Cpu));
    let full = model.project(&x, true, Precision::Fp32);
    let mixed = model.project(&x, true, Precision::Bf16);
    assert_eq!(mixed.kind(), Kind::Float);
    let relative = ((&mixed - &full).norm().double_value(&[])) / full.norm().double_value(&[]);
    // bfloat16 keeps 8 significant bits (relative rounding 0.4%) through 18 layers.
    assert!(relative < 0.05, "bf16 projections differ from f32 by {relative:.4} (relative)");
    assert!(relative > 1e-6, "bf16 projections equal the f32 ones: the bf16 path did not run");
    let loss = simclr::nt_xent(&mixed.narrow(0, 0, 8), &mixed.narrow(0, 8, 8), 0.5);
    loss.backward();
    for (name, w) in model.vs.variables() {
        if w.requires_grad() {
            let g = w.grad();
            assert!(g.defined(), "{name} got no gradient");
            assert_eq!(g.kind(), Kind::Float, "{name}: gradient kind");
            assert!(g.isfinite().all().int64_value(&[]) == 1, "{name}: non-finite gradient");
        }
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zl-bf16-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

#[test]
fn bf16_resume_is_bit_exact() {
    tch::set_num_threads(1);
    let (n, s) = (48usize, 16usize);
    let pixels: Vec<u8> = (0..n * s * s * 3).map(|k| ((k * 7 + k / 97 * 13) % 256) as u8).collect();
    let set = ImageSet { pixels, count: n, height: s, width: s, channels: 3, labels: None, class_names: vec![] };
    let run = |out: &PathBuf, resume: bool, interrupt: Option<usize>| {
        let o = PretrainOptions { out, seed: 3, resume, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: interrupt, max_seconds: None };
        pretrain::pretrain(&set, &config(), &params(), &o).unwrap()
    };
    let (full, part) = (dir("full"), dir("part"));
    let done = run(&full, false, None);
    assert!(run(&part, false, Some(4)).interrupted);
    let resumed = run(&part, true, None);
    let load = |path: &std::path::Path| {
        let mut model = SimclrModel::new(&config(), &params(), tch::Device::Cpu);
        simclr::load_checkpoint(path, &mut model, None).unwrap();
        let mut v: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    for ((name, x), (_, y)) in load(&done.checkpoint).iter().zip(&load(&resumed.checkpoint)) {
        assert_eq!(x.kind(), Kind::Float, "{name}: master weights must stay f32");
        assert!(x.equal(y), "{name} differs between the uninterrupted and the resumed bf16 run");
    }
    // The f32 and bf16 runs of the same seed differ (the precision setting reaches training).
    let f32_dir = dir("f32");
    let o = PretrainOptions { out: &f32_dir, seed: 3, resume: false, device: tch::Device::Cpu, quiet: true, knn: None, interrupt_after_steps: None, max_seconds: None };
    let f32_run = pretrain::pretrain(&set, &config(), &SimclrParams { precision: Precision::Fp32, ..params() }, &o).unwrap();
    assert!(load(&done.checkpoint).iter().zip(&load(&f32_run.checkpoint)).any(|((_, x), (_, y))| !x.equal(y)));
    for d in [full, part, f32_dir] {
        std::fs::remove_dir_all(d).ok();
    }
}

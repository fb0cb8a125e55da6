//! Helpers of `scripts/crash_test.sh` (issue 12, kill -9 safety):
//!
//!     crash_tools make DIR        a tiny MNIST-layout dataset, word vectors and run config
//!     crash_tools check RUN       every file under its final name is complete (JSON, JSON
//!                                 lines, safetensors, .npy, PNG parse); hidden temporaries skipped
//!     crash_tools compare A B     metrics (timings aside), the selected classifier and the
//!                                 backbone of two finished runs are identical, bit for bit
use serde_json::Value;
use std::path::{Path, PathBuf};
use tch::Tensor;

fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0u8, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// Three classes of 16x16 images: a bright bar whose position depends on the class, plus noise.
fn make(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut rng = zerolabel::rng::Rng::new(5);
    for (prefix, n) in [("train", 300u32), ("t10k", 90)] {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for i in 0..n {
            let class = (i % 3) as usize;
            for r in 0..16 {
                for c in 0..16 {
                    let on = match class {
                        0 => (6..10).contains(&r),
                        1 => (6..10).contains(&c),
                        _ => (r as i32 - c as i32).abs() < 2,
                    };
                    let noise = rng.below(60) as u8;
                    pixels.push(if on { 180 + noise } else { noise });
                }
            }
            labels.push(class as u8);
        }
        idx(&data.join(format!("{prefix}-images-idx3-ubyte")), &[n, 16, 16], &pixels);
        idx(&data.join(format!("{prefix}-labels-idx1-ubyte")), &[n], &labels);
    }
    std::fs::write(dir.join("words.txt"), "bar 1 0 0.1\ncolumn 0.2 1 0\ndiagonal 0 0.3 1\n").unwrap();
    std::fs::write(
        dir.join("tiny.toml"),
        "name = \"tiny\"\ndevice = \"cpu\"\n[data]\nformat = \"idx\"\npath = \"data\"\n\
[classes]\nnames = [\"bar\", \"column\", \"diagonal\"]\nword_vectors = \"words.txt\"\n\
[pretrain]\nwidth = 0.125\nepochs = 4\nbatch_size = 50\nprecision = \"fp32\"\nthreads = 1\nknn_every = 1\n\
[stages]\nseeds = 3\ncluster_steps = 150\ncluster_batch_size = 100\nsteps = 150\nbatch_size = 100\n\
[report]\nsk_comparison = true\n",
    )
    .unwrap();
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Checks that one final-named file is complete; Err says what is wrong.
fn check_file(path: &Path) -> Result<(), String> {
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    match ext.as_str() {
        "json" => serde_json::from_slice::<Value>(&bytes).map(|_| ()).map_err(|e| format!("JSON: {e}")),
        "jsonl" => {
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                return Err("last line cut".into());
            }
            for line in String::from_utf8_lossy(&bytes).lines() {
                serde_json::from_str::<Value>(line).map_err(|e| format!("JSON line: {e}"))?;
            }
            if bytes.is_empty() {
                return Err("empty log".into());
            }
            Ok(())
        }
        "safetensors" => safetensors::SafeTensors::deserialize(&bytes).map(|_| ()).map_err(|e| format!("safetensors: {e}")),
        "npy" => zerolabel::data::npy::parse_npy(&bytes, path).map(|_| ()).map_err(|e| e.to_string()),
        "png" => image::load_from_memory(&bytes).map(|_| ()).map_err(|e| format!("PNG: {e}")),
        "md" | "csv" => if bytes.is_empty() { Err("empty".into()) } else { Ok(()) },
        _ => Ok(()),
    }
}

fn check(run: &Path) -> bool {
    let (mut ok, mut temporaries, mut n) = (true, 0, 0);
    for path in files(run) {
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            temporaries += 1;
            continue;
        }
        n += 1;
        if let Err(e) = check_file(&path) {
            println!("PARTIAL: {}: {e}", path.display());
            ok = false;
        }
    }
    println!("checked {n} file(s) under final names ({temporaries} hidden temporaries): {}", if ok { "all complete" } else { "PARTIAL FILES" });
    ok
}

fn strip_timings(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !(k.contains("seconds") || k.ends_with("_s") || k.contains("unix") || k == "reused"));
            map.values_mut().for_each(strip_timings);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_timings),
        _ => {}
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn same_tensors(a: &Path, b: &Path) -> Result<(), String> {
    let ta = Tensor::read_safetensors(a).map_err(|e| format!("{}: {e}", a.display()))?;
    let tb = Tensor::read_safetensors(b).map_err(|e| format!("{}: {e}", b.display()))?;
    if ta.len() != tb.len() {
        return Err(format!("{} tensors vs {}", ta.len(), tb.len()));
    }
    for (name, x) in &ta {
        let y = tb.iter().find(|(n, _)| n == name).ok_or(format!("{name} missing"))?;
        if x.size() != y.1.size() || !x.equal(&y.1) {
            return Err(format!("tensor {name} differs ({} vs {})", a.display(), b.display()));
        }
    }
    Ok(())
}

fn compare(a: &Path, b: &Path) -> bool {
    let mut ok = true;
    let (mut ma, mut mb) = (json(&a.join("metrics.json")), json(&b.join("metrics.json")));
    strip_timings(&mut ma);
    strip_timings(&mut mb);
    if ma != mb {
        println!("DIFFERENT: metrics.json");
        ok = false;
    }
    let (model_a, model_b) = (json(&a.join("model.json")), json(&b.join("model.json")));
    for key in ["classifier", "backbone_checkpoint"] {
        let (pa, pb) = (a.join(model_a[key].as_str().unwrap()), b.join(model_b[key].as_str().unwrap()));
        if let Err(e) = same_tensors(&pa, &pb) {
            println!("DIFFERENT: {key}: {e}");
            ok = false;
        }
    }
    println!("metrics (timings aside), classifier and backbone: {}", if ok { "identical" } else { "DIFFERENT" });
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ok = match args.first().map(String::as_str) {
        Some("make") => {
            make(Path::new(&args[1]));
            true
        }
        Some("check") => check(Path::new(&args[1])),
        Some("compare") => compare(Path::new(&args[1]), Path::new(&args[2])),
        _ => {
            eprintln!("usage: crash_tools make DIR | check RUN | compare RUN_A RUN_B");
            false
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}

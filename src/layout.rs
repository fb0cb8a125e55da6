//! Every path of a run folder, built from one root (SCAN's pattern), so that no two places
//! spell a file name: `RunLayout` for `zerolabel run`, `SeedsLayout` for the per-seed results of
//! stages II-III (the whole `--out` of `match`, or a run's `stages/match-KEY/`).
use std::path::{Path, PathBuf};

/// The folder of one `zerolabel run`.
#[derive(Clone, Debug)]
pub struct RunLayout {
    root: PathBuf,
}

impl RunLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunLayout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `stages/`: every cached stage.
    pub fn stages(&self) -> PathBuf {
        self.root.join("stages")
    }

    /// `stages/<name>-<key>`, relative to the root (as the manifest records it).
    pub fn stage_relative(name: &str, key: &str) -> PathBuf {
        PathBuf::from("stages").join(format!("{name}-{key}"))
    }

    pub fn stage(&self, name: &str, key: &str) -> PathBuf {
        self.root.join(Self::stage_relative(name, key))
    }

    /// A stage folder's record, whose presence marks the stage finished.
    pub fn stage_record(stage_dir: &Path) -> PathBuf {
        stage_dir.join("stage.json")
    }

    pub fn features_train(features_dir: &Path) -> PathBuf {
        features_dir.join("train.safetensors")
    }

    pub fn features_test(features_dir: &Path) -> PathBuf {
        features_dir.join("test.safetensors")
    }

    pub fn pretrain_log(pretrain_dir: &Path) -> PathBuf {
        pretrain_dir.join("pretrain_log.jsonl")
    }

    pub fn model(&self) -> PathBuf {
        self.root.join("model.json")
    }

    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    pub fn report(&self) -> PathBuf {
        self.root.join("report.md")
    }

    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// A path inside the run as the run's own files record it (relative to the root).
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }
}

/// The per-seed results of stages II-III under one folder.
#[derive(Clone, Debug)]
pub struct SeedsLayout {
    root: PathBuf,
}

impl SeedsLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SeedsLayout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `seed-N/`
    pub fn seed(&self, seed: u64) -> PathBuf {
        self.root.join(format!("seed-{seed}"))
    }

    /// `seed-N/seed.json`: its presence marks the seed finished.
    pub fn seed_record(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("seed.json")
    }

    pub fn train_log(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("train_log.jsonl")
    }

    pub fn classifier(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("classifier.safetensors")
    }

    /// The paper's stage III, trained beside a naming chain that is not the paper's.
    pub fn paper_classifier(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("paper_classifier.safetensors")
    }

    /// `consensus.json`: the seeds' geometry names voted (written when there are several seeds).
    pub fn consensus(&self) -> PathBuf {
        self.root.join("consensus.json")
    }

    /// The seed's clusters named by the consensus of all seeds, as a nearest-centre classifier.
    pub fn consensus_classifier(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("consensus_classifier.safetensors")
    }

    pub fn clusters(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("clusters.safetensors")
    }

    pub fn test_predictions(&self, seed: u64) -> PathBuf {
        self.seed(seed).join("test_predictions.npy")
    }

    /// `sk-seed-N/`: Figure 4B's L_sk classifier on seed N's clusters.
    pub fn sk(&self, seed: u64) -> PathBuf {
        self.root.join(format!("sk-seed-{seed}"))
    }

    pub fn sk_classifier(&self, seed: u64) -> PathBuf {
        self.sk(seed).join("classifier.safetensors")
    }

    pub fn sk_train_log(&self, seed: u64) -> PathBuf {
        self.sk(seed).join("train_log.jsonl")
    }

    /// The summary files of `match` and `ablate`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.md")
    }

    pub fn ablation_log(&self) -> PathBuf {
        self.root.join("train_log.jsonl")
    }
}

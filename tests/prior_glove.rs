//! (b) The GloVe prior for the CIFAR-10 class names, and its t^ and w values (method.md).
use zerolabel::prior::encoder::WordVectorEncoder;
use zerolabel::prior::nominal::nominal_prior;
use zerolabel::prior::word_vectors::{WordVectorSource, WordVectors};
use zerolabel::prior::{PriorParams, TargetScheme};

const CIFAR10: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The default GloVe encoder, or None (with the reason printed) when it is not installed.
fn glove() -> Option<WordVectorEncoder> {
    let source = WordVectorSource::default_glove();
    let WordVectorSource::KumoGlove(dir) = &source else { return None };
    if !dir.join("glove_6B_50d_emb.npy").exists() {
        eprintln!("SKIPPED: GloVe 6B 50d is not installed at {} (run scripts/setup.sh)", dir.display());
        return None;
    }
    Some(WordVectorEncoder { source })
}

fn names() -> Vec<String> {
    CIFAR10.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cat_is_nearest_to_dog_and_farthest_from_a_vehicle() {
    let Some(source) = glove() else { return };
    let prior = nominal_prior(&names(), &source, PriorParams::default()).unwrap();
    let cat = 3;
    let nearest = prior.ranks[cat][1];
    let farthest = prior.ranks[cat][9];
    assert_eq!(CIFAR10[nearest], "dog");
    assert!(["automobile", "truck", "airplane", "ship"].contains(&CIFAR10[farthest]), "farthest: {}", CIFAR10[farthest]);
    // And the reverse: dog's nearest is cat.
    assert_eq!(CIFAR10[prior.ranks[5][1]], "cat");
}

#[test]
fn target_vectors_and_weights_match_the_method() {
    let Some(source) = glove() else { return };
    // Paper: 1, 0.5, 0.2, then 0.1 ... -0.5 in steps of 0.1 (c = 10), unit-normalised.
    let paper = [1.0, 0.5, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4, -0.5];
    // Review code: 1, 0.5, 0.1, then -1/6 down to -1/2 in equal steps.
    let review: Vec<f64> = [1.0, 0.5, 0.1].into_iter().chain((0..7).map(|k| -1.0 / 6.0 - k as f64 / 18.0)).collect();
    for (scheme, values) in [(TargetScheme::Paper, paper.to_vec()), (TargetScheme::ReviewCode, review)] {
        let params = PriorParams { targets: scheme, ..Default::default() };
        let prior = nominal_prior(&names(), &source, params).unwrap();
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        for i in 0..10 {
            let row = &prior.targets[i];
            assert!((row.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12, "t^_{i} is not unit norm");
            for (p, &k) in prior.ranks[i].iter().enumerate() {
                assert!((row[k] - values[p] / norm).abs() < 1e-12, "{scheme:?} t^[{i}][{k}] at rank {p}");
            }
        }
    }
    // Weights, eq. 2: target 1; 2nd and last e^-1; 3rd and second-to-last e^-2; ...
    let prior = nominal_prior(&names(), &source, PriorParams::default()).unwrap();
    let e = |x: f64| (-x).exp();
    let by_rank = [1.0, e(1.), e(2.), e(3.), e(4.), e(5.), e(4.), e(3.), e(2.), e(1.)];
    for i in 0..10 {
        for (p, &k) in prior.ranks[i].iter().enumerate() {
            assert!((prior.weights[i][k] - by_rank[p]).abs() < 1e-12);
        }
    }
}

#[test]
fn multi_word_names_average_their_words_and_unknown_words_are_named() {
    let Some(source) = glove() else { return };
    let classes = vec!["ankle boot".to_string(), "T-shirt/top".to_string(), "zzqxj flurbo".to_string()];
    let vectors = WordVectors::load_for_classes(&source.source, &classes).unwrap();
    let ankle = vectors.get("ankle").unwrap().to_vec();
    let boot = vectors.get("boot").unwrap().to_vec();
    let mean = vectors.embed_class("ankle boot").unwrap();
    for k in 0..vectors.dim {
        assert!((mean[k] - (ankle[k] + boot[k]) / 2.0).abs() < 1e-6);
    }
    assert!(vectors.embed_class("T-shirt/top").is_ok());
    let err = vectors.embed_class("zzqxj flurbo").unwrap_err().to_string();
    assert!(err.contains("'zzqxj'") && err.contains("'zzqxj flurbo'"), "{err}");
}

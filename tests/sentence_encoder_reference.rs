//! The sentence encoders in Rust against the reference implementation (sentence-transformers
//! 6.2.0, transformers 5.24.0, tokenizers 0.23.3, torch 2.13.0 on the CPU): all-MiniLM-L6-v2
//! (BERT) and all-mpnet-base-v2 (MPNet, relative-position attention bias). Token ids of tricky
//! strings, embedding components and cosine similarities to 1e-4, names alone and averaged over
//! the 18 CIFAR templates. The values were printed by `scripts/minilm_reference.py MODEL_DIR` (its
//! docstring says how it was run). Each model's tests skip, saying why, when it is not installed.
use std::path::PathBuf;
use zerolabel::prior::sentence_encoder::{default_model_dir, default_mpnet_dir, default_templates, SentenceEncoder};

/// One model's reference values.
struct Reference {
    name: &'static str,
    dir: PathBuf,
    install: &'static str,
    token_cases: Vec<(String, Vec<i64>)>,
    /// (max_seq_length, start id, end id).
    truncation: (usize, i64, i64),
    dim: usize,
    cat_head: [f32; 8],
    name_cosines: &'static [(&'static str, &'static str, f64)],
    template_cosines: &'static [(&'static str, &'static str, f64)],
}

fn minilm() -> Reference {
    Reference {
        name: "all-MiniLM-L6-v2",
        dir: default_model_dir(),
        install: "run scripts/setup.sh, or set ZEROLABEL_MINILM_DIR",
        token_cases: token_cases(),
        truncation: (256, 101, 102),
        dim: 384,
        cat_head: CAT_HEAD,
        name_cosines: &NAME_COSINES,
        template_cosines: &TEMPLATE_COSINES,
    }
}

fn mpnet() -> Reference {
    Reference {
        name: "all-mpnet-base-v2",
        dir: default_mpnet_dir(),
        install: "run scripts/setup.sh --mpnet, or set ZEROLABEL_MPNET_DIR",
        token_cases: mpnet_token_cases(),
        truncation: (384, 0, 2),
        dim: 768,
        cat_head: MPNET_CAT_HEAD,
        name_cosines: &MPNET_NAME_COSINES,
        template_cosines: &MPNET_TEMPLATE_COSINES,
    }
}

/// The model, or None (with the reason printed) where it is not installed.
fn load(reference: &Reference) -> Option<SentenceEncoder> {
    if !reference.dir.join("model.safetensors").exists() {
        eprintln!("SKIPPED: {} is not installed at {} ({})", reference.name, reference.dir.display(), reference.install);
        return None;
    }
    Some(SentenceEncoder::load(&reference.dir).unwrap())
}

/// (text, ids of the reference tokenizer, truncation at 256 tokens).
fn token_cases() -> Vec<(String, Vec<i64>)> {
    vec![
    ("cat".to_string(), vec![101, 4937, 102]),
    ("T-shirt/top".to_string(), vec![101, 1056, 1011, 3797, 1013, 2327, 102]),
    ("ankle boot".to_string(), vec![101, 10792, 9573, 102]),
    ("Ankle Boot".to_string(), vec![101, 10792, 9573, 102]),
    ("Caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e".to_string(), vec![101, 7668, 13675, 21382, 7987, 9307, 2063, 102]),
    ("na\u{ef}ve r\u{e9}sum\u{e9} \u{c5}ngstr\u{f6}m".to_string(), vec![101, 15743, 13746, 17076, 15687, 102]),
    ("Hello, world!!".to_string(), vec![101, 7592, 1010, 2088, 999, 999, 102]),
    ("3.14 and 1,000,000 km/h".to_string(), vec![101, 1017, 1012, 2403, 1998, 1015, 1010, 2199, 1010, 2199, 2463, 1013, 1044, 102]),
    ("can't won't don\u{2019}t".to_string(), vec![101, 2064, 1005, 1056, 2180, 1005, 1056, 2123, 1521, 1056, 102]),
    ("aquatic_mammals".to_string(), vec![101, 13582, 1035, 11993, 102]),
    ("large man-made outdoor things".to_string(), vec![101, 2312, 2158, 1011, 2081, 7254, 2477, 102]),
    ("\u{65e5}\u{672c}\u{8a9e} text".to_string(), vec![101, 1864, 1876, 1950, 3793, 102]),
    ("  multiple   spaces\u{9}and\u{9}tabs\u{a}".to_string(), vec![101, 3674, 7258, 1998, 21628, 2015, 102]),
    ("supercalifragilisticexpialidocious".to_string(), vec![101, 3565, 9289, 10128, 29181, 24411, 4588, 10288, 19312, 21273, 10085, 6313, 102]),
    ("UPPER lower MiXeD".to_string(), vec![101, 3356, 2896, 3816, 102]),
    ("emoji \u{1f642} test".to_string(), vec![101, 7861, 29147, 2072, 100, 3231, 102]),
    ("x".repeat(201), [101, 100, 102].to_vec()),
    ("ctrl\u{0}char\u{200b}zero".to_string(), vec![101, 14931, 12190, 7507, 15378, 10624, 102]),
    ("\u{df} stra\u{df}e".to_string(), vec![101, 1096, 2358, 27807, 102]),
    ("\u{3b1}\u{3b2}\u{3b3} \u{3b4}".to_string(), vec![101, 1155, 29720, 29721, 1158, 102]),
    ("$100 #1 @home ~tilde `back` {brace} [sq]".to_string(), vec![101, 1002, 2531, 1001, 1015, 1030, 2188, 1066, 18681, 3207, 1036, 2067, 1036, 1063, 17180, 1065, 1031, 5490, 1033, 102]),
    ("".to_string(), vec![101, 102]),
    ("a photo of a ankle boot.".to_string(), vec![101, 1037, 6302, 1997, 1037, 10792, 9573, 1012, 102]),
    ("x".repeat(100), [vec![101, 22038], vec![20348; 49], vec![102]].concat()),
    ("x".repeat(101), [101, 100, 102].to_vec()),
    ("\u{130}stanbul".to_string(), vec![101, 9960, 102]),
    ("\u{d55c}\u{ad6d}\u{c5b4}".to_string(), vec![101, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 102]),
    ("\u{fb01}ne".to_string(), vec![101, 1984, 2638, 102]),
    ("non\u{a0}breaking".to_string(), vec![101, 2512, 4911, 102]),
    ("cafe\u{301} composed".to_string(), vec![101, 7668, 3605, 102]),
    ("\u{3002}\u{3001}\u{300c}\u{6771}\u{4eac}\u{300d}".to_string(), vec![101, 1636, 1635, 1641, 1879, 1755, 1642, 102]),
    ("pi \u{3c0}\u{2248} 3\u{bd}".to_string(), vec![101, 14255, 1170, 30133, 1017, 13714, 102]),
    ]
}

/// Cosine similarity of the names alone (no template).
const NAME_COSINES: [(&str, &str, f64); 8] = [
    ("cat", "dog", 0.660638),
    ("airplane", "ship", 0.399677),
    ("automobile", "truck", 0.672308),
    ("T-shirt/top", "shirt", 0.696558),
    ("ankle boot", "sneaker", 0.437404),
    ("large man-made outdoor things", "fruit and vegetables", 0.262975),
    ("a photo of a cat.", "a blurry photo of a dog.", 0.567650),
    ("Caf\u{e9}", "cafe", 1.000000),
];

/// Cosine similarity of the class vectors averaged over the 18 CIFAR templates.
const TEMPLATE_COSINES: [(&str, &str, f64); 4] = [
    ("cat", "dog", 0.670601),
    ("airplane", "ship", 0.697638),
    ("T-shirt/top", "shirt", 0.843232),
    ("ankle boot", "sneaker", 0.641986),
];

/// The first eight components of the unit vector of "cat".
const CAT_HEAD: [f32; 8] = [0.037330, 0.051162, -0.000306, 0.060210, -0.117494, -0.014230, 0.105776, 0.026786];

/// (text, ids of the reference tokenizer, truncation at 384 tokens).
fn mpnet_token_cases() -> Vec<(String, Vec<i64>)> {
    vec![
        ("cat".to_string(), vec![0, 4941, 2]),
        ("T-shirt/top".to_string(), vec![0, 1060, 1015, 3801, 1017, 2331, 2]),
        ("ankle boot".to_string(), vec![0, 10796, 9577, 2]),
        ("Ankle Boot".to_string(), vec![0, 10796, 9577, 2]),
        ("Caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e".to_string(), vec![0, 7672, 13679, 21386, 7991, 9311, 2067, 2]),
        ("na\u{ef}ve r\u{e9}sum\u{e9} \u{c5}ngstr\u{f6}m".to_string(), vec![0, 15747, 13750, 17080, 15691, 2]),
        ("Hello, world!!".to_string(), vec![0, 7596, 1014, 2092, 1003, 1003, 2]),
        ("3.14 and 1,000,000 km/h".to_string(), vec![0, 1021, 1016, 2407, 2002, 1019, 1014, 2203, 1014, 2203, 2467, 1017, 1048, 2]),
        ("can't won't don\u{2019}t".to_string(), vec![0, 2068, 1009, 1060, 2184, 1009, 1060, 2127, 1525, 1060, 2]),
        ("aquatic_mammals".to_string(), vec![0, 13586, 1039, 11997, 2]),
        ("large man-made outdoor things".to_string(), vec![0, 2316, 2162, 1015, 2085, 7258, 2481, 2]),
        ("\u{65e5}\u{672c}\u{8a9e} text".to_string(), vec![0, 1868, 1880, 1954, 3797, 2]),
        ("  multiple   spaces\u{9}and\u{9}tabs\u{a}".to_string(), vec![0, 3678, 7262, 2002, 21632, 2019, 2]),
        ("supercalifragilisticexpialidocious".to_string(), vec![0, 3569, 9293, 10132, 29185, 24415, 4592, 10292, 19316, 21277, 10089, 6317, 2]),
        ("UPPER lower MiXeD".to_string(), vec![0, 3360, 2900, 3820, 2]),
        ("emoji \u{1f642} test".to_string(), vec![0, 7865, 29151, 2076, 104, 3235, 2]),
        ("x".repeat(201), vec![0, 104, 2]),
        ("ctrl\u{0}char\u{200b}zero".to_string(), vec![0, 14935, 12194, 7511, 15382, 10628, 2]),
        ("\u{df} stra\u{df}e".to_string(), vec![0, 1100, 2362, 27811, 2]),
        ("\u{3b1}\u{3b2}\u{3b3} \u{3b4}".to_string(), vec![0, 1159, 29724, 29725, 1162, 2]),
        ("$100 #1 @home ~tilde `back` {brace} [sq]".to_string(), vec![0, 1006, 2535, 1005, 1019, 1034, 2192, 1070, 18685, 3211, 1040, 2071, 1040, 1067, 17184, 1069, 1035, 5494, 1037, 2]),
        ("".to_string(), vec![0, 2]),
        ("a photo of a ankle boot.".to_string(), vec![0, 1041, 6306, 2001, 1041, 10796, 9577, 1016, 2]),
        ("x".repeat(100), [vec![0, 22042], vec![20352; 49], vec![2]].concat()),
        ("x".repeat(101), vec![0, 104, 2]),
        ("\u{130}stanbul".to_string(), vec![0, 9964, 2]),
        ("\u{d55c}\u{ad6d}\u{c5b4}".to_string(), vec![0, 1473, 30010, 30025, 29995, 30018, 30024, 30003, 30012, 2]),
        ("\u{fb01}ne".to_string(), vec![0, 1988, 2642, 2]),
        ("non\u{a0}breaking".to_string(), vec![0, 2516, 4915, 2]),
        ("cafe\u{301} composed".to_string(), vec![0, 7672, 3609, 2]),
        ("\u{3002}\u{3001}\u{300c}\u{6771}\u{4eac}\u{300d}".to_string(), vec![0, 1640, 1639, 1645, 1883, 1759, 1646, 2]),
        ("pi \u{3c0}\u{2248} 3\u{bd}".to_string(), vec![0, 14259, 1174, 30137, 1021, 13718, 2]),
    ]
}

const MPNET_NAME_COSINES: [(&str, &str, f64); 8] = [
    ("cat", "dog", 0.608123),
    ("airplane", "ship", 0.463232),
    ("automobile", "truck", 0.649484),
    ("T-shirt/top", "shirt", 0.704012),
    ("ankle boot", "sneaker", 0.616532),
    ("large man-made outdoor things", "fruit and vegetables", 0.206964),
    ("a photo of a cat.", "a blurry photo of a dog.", 0.524807),
    ("Caf\u{e9}", "cafe", 1.000000),
];

const MPNET_TEMPLATE_COSINES: [(&str, &str, f64); 4] = [
    ("cat", "dog", 0.709697),
    ("airplane", "ship", 0.655223),
    ("T-shirt/top", "shirt", 0.918186),
    ("ankle boot", "sneaker", 0.821478),
];

const MPNET_CAT_HEAD: [f32; 8] = [0.026498, 0.057732, -0.026925, -0.025699, 0.040583, -0.007880, -0.012032, 0.017332];

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn token_ids_match(reference: &Reference) {
    let Some(encoder) = load(reference) else { return };
    for (text, expected) in &reference.token_cases {
        assert_eq!(&encoder.token_ids(text), expected, "{}: text {text:?}", reference.name);
    }
    let (max_len, start, end) = reference.truncation;
    let long = vec!["word"; 500].join(" ");
    let ids = encoder.token_ids(&long);
    assert_eq!((ids.len(), ids[0], ids[max_len - 1]), (max_len, start, end), "{}: truncation to max_seq_length {max_len}", reference.name);
}

fn embeddings_match(reference: &Reference) {
    let Some(encoder) = load(reference) else { return };
    let cat = &encoder.encode(&["cat".to_string()]).unwrap()[0];
    assert_eq!(cat.len(), reference.dim);
    let norm = cat.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    for (k, (got, want)) in cat.iter().zip(reference.cat_head).enumerate() {
        assert!((got - want).abs() < 1e-4, "{}: component {k} of 'cat': {got} vs {want}", reference.name);
    }
    // All texts in one call: sentences of different lengths share padded batches.
    let texts: Vec<String> = reference.name_cosines.iter().flat_map(|(a, b, _)| [a.to_string(), b.to_string()]).collect();
    let vectors = encoder.encode(&texts).unwrap();
    for (k, (a, b, want)) in reference.name_cosines.iter().enumerate() {
        let got = cosine(&vectors[2 * k], &vectors[2 * k + 1]);
        assert!((got - want).abs() < 1e-4, "{}: cos({a:?}, {b:?}) = {got:.6}, reference {want:.6}", reference.name);
    }
}

fn template_vectors_match(reference: &Reference) {
    let Some(encoder) = load(reference) else { return };
    let names: Vec<String> = reference.template_cosines.iter().flat_map(|(a, b, _)| [a.to_string(), b.to_string()]).collect();
    let vectors = encoder.encode_classes(&names, &default_templates()).unwrap();
    for (k, (a, b, want)) in reference.template_cosines.iter().enumerate() {
        let got = cosine(&vectors[2 * k], &vectors[2 * k + 1]);
        assert!((got - want).abs() < 1e-4, "{}: templates: cos({a:?}, {b:?}) = {got:.6}, reference {want:.6}", reference.name);
    }
    let bad = encoder.encode_classes(&names, &["a photo of a cat.".to_string()]).unwrap_err().to_string();
    assert!(bad.contains("'a photo of a cat.'") && bad.contains("{}"), "{bad}");
}

#[test]
fn minilm_token_ids_match_the_reference_tokenizer() {
    token_ids_match(&minilm());
}

#[test]
fn minilm_embeddings_and_cosines_match_sentence_transformers() {
    embeddings_match(&minilm());
}

#[test]
fn minilm_template_averaged_class_vectors_match_sentence_transformers() {
    template_vectors_match(&minilm());
}

#[test]
fn mpnet_token_ids_match_the_reference_tokenizer() {
    token_ids_match(&mpnet());
}

#[test]
fn mpnet_embeddings_and_cosines_match_sentence_transformers() {
    embeddings_match(&mpnet());
}

#[test]
fn mpnet_template_averaged_class_vectors_match_sentence_transformers() {
    template_vectors_match(&mpnet());
}

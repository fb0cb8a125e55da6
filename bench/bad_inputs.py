#!/usr/bin/env python3
"""The bad-input table of issue 12: runs the release binary on ~170 bad inputs across readers,
feature files, class names, configs, predict and numeric flags, and classifies each outcome:

  clean    exit 2, one "error:" line naming the problem, no panic
  panic    a panic, an abort or a signal (exit 101, 134, negative)
  hang     over the time limit
  success  exit 0 on a bad input (a silent wrong success)
  damaged  an earlier output in the output folder was changed or removed by a failing command

Every command's output location is pre-filled with earlier results; a failing command must
leave them byte for byte. Needs target/release/zerolabel and target/release/examples/crash_tools
(cargo build --release --bin zerolabel --example crash_tools). Standard library only.

    bench/bad_inputs.sh [TABLE.md]
"""
import gzip, hashlib, json, os, shutil, struct, subprocess, sys, tempfile, time, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/zerolabel")
TOOLS = os.path.join(ROOT, "target/release/examples/crash_tools")
TIMEOUT = 120
W = tempfile.mkdtemp(prefix="zl-bad-")
CASES = []


def case(group, name, args, prepare=None, stdin_close=False):
    CASES.append((group, name, args, prepare))


def path(*p):
    return os.path.join(W, *p)


def write(p, data):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with open(p, mode) as f:
        f.write(data)
    return p


def idx(dims, body):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d & 0xFFFFFFFF) for d in dims) + body


def npy(descr, shape, body, fortran=False):
    shape_text = "(%s,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(str(s) for s in shape)
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", shape_text)
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def f32(values):
    return b"".join(struct.pack("<f", v) for v in values)


def i64(values):
    return b"".join(struct.pack("<q", v) for v in values)


def safetensors(tensors):
    """tensors: name -> (dtype, shape, bytes)"""
    header, data = {}, b""
    for name, (dtype, shape, body) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(body)]}
        data += body
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def npz(members, compress=True):
    p = tempfile.mktemp(dir=W, suffix=".npz")
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    with open(p, "rb") as f:
        data = f.read()
    os.remove(p)
    return data


def fifo(p):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if not os.path.exists(p):
        os.mkfifo(p)
    return p


def dataset(name, mutate=None):
    """A copy of the tiny IDX dataset with `mutate(dir)` applied."""
    d = path("data", name)
    shutil.copytree(path("tiny", "data"), d)
    if mutate:
        mutate(d)
    return d


def png(w=6, h=5):
    import zlib
    raw = b"".join(b"\0" + bytes((x * 40 + y * 7) % 256 for x in range(3 * w)) for y in range(h))
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_header_only(w, h):
    import zlib
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- fixtures
def fixtures():
    subprocess.run([TOOLS, "make", path("tiny")], check=True)
    ok = subprocess.run([BIN, "run", "--quiet", "--config", path("tiny", "tiny.toml"), "--out", path("good-run"),
                         "--set", "pretrain.epochs=1", "--set", "stages.seeds=1", "--set", "report.sk_comparison=false"],
                        capture_output=True, text=True)
    if ok.returncode != 0:
        sys.exit("fixture run failed: " + ok.stderr)
    subprocess.run([BIN, "pixel-features", "--quiet", "--format", "idx", "--data", path("tiny", "data"), "--pca", "8", "--out", path("feat")], check=True)
    write(path("words.txt"), "cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n")
    # The earlier results every command's output location starts with.
    tpl = path("template")
    os.makedirs(tpl)
    for f in ["train.safetensors", "test.safetensors"]:
        shutil.copy(path("feat", f), os.path.join(tpl, f))
    write(os.path.join(tpl, "predictions.csv"), "path,class,confidence\nold.png,cat,0.9\n")
    write(os.path.join(tpl, "metrics.json"), '{"earlier": true}\n')
    shutil.copytree(path("good-run", "stages"), os.path.join(tpl, "stages"))
    shutil.copy(path("good-run", "model.json"), os.path.join(tpl, "model.json"))


def out_hash(d):
    h = hashlib.sha256()
    for base, _, files in sorted(os.walk(d)):
        for f in sorted(files):
            p = os.path.join(base, f)
            if f.startswith("."):
                continue
            h.update(os.path.relpath(p, d).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


# ---------------------------------------------------------------- cases
def pf(fmt, data, *extra):
    mode = [] if "--pca" in extra else ["--raw"]
    return ["pixel-features", "--format", fmt, "--data", data, *mode, "--out", "{OUT}", *extra]


def knn(train, test, *extra):
    return ["knn", "--train", train, "--test", test, *extra]


def match(train, test, *extra, classes="cat,dog,car"):
    defaults = {"--steps": "5", "--cluster-steps": "5", "--cluster-batch-size": "50", "--batch-size": "50"}
    given = {e.split("=")[0] for e in extra}
    flags = [f"{k}={v}" for k, v in defaults.items() if k not in given]
    return ["match", "--train", train, "--test", test, "--classes", classes, "--word-vectors", path("words.txt"), "--out", "{OUT}", *flags, *extra]


def prior(*extra):
    return ["prior", *extra]


def run_cfg(text_or_overrides, *extra):
    return ["run", "--config", text_or_overrides, "--out", "{OUT}", *extra]


def define_cases():
    good_train, good_test = path("feat", "train.safetensors"), path("feat", "test.safetensors")
    # --- IDX readers
    def set_file(name, data):
        return lambda d: write(os.path.join(d, name), data)
    def remove(name):
        return lambda d: os.remove(os.path.join(d, name))
    img_tr, lab_tr, img_te, lab_te = "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
    for fname in [img_tr, lab_tr, img_te, lab_te]:
        is_img = "images" in fname
        n = 300 if fname.startswith("train") else 90
        variants = {
            "missing": remove(fname),
            "empty file": set_file(fname, b""),
            "bad magic": set_file(fname, b"\x12\x34\x08\x03" + bytes(100)),
            "dtype 0x0d": set_file(fname, bytes([0, 0, 0x0D, 3 if is_img else 1]) + bytes(100)),
            "truncated header": set_file(fname, bytes([0, 0, 8, 3, 0, 0])),
            "truncated body": set_file(fname, idx([n, 16, 16] if is_img else [n], bytes(10))),
            "trailing bytes": set_file(fname, idx([n, 16, 16] if is_img else [n], bytes(n * (256 if is_img else 1) + 7))),
            "overflowing dims": set_file(fname, idx([4, 2**31, 2**31] if is_img else [2**31 * 2 - 1], b"")),
            "FIFO": lambda d, f=fname: (os.remove(os.path.join(d, f)), fifo(os.path.join(d, f))),
            "a folder": lambda d, f=fname: (os.remove(os.path.join(d, f)), os.makedirs(os.path.join(d, f))),
            "corrupt gzip": lambda d, f=fname: (os.remove(os.path.join(d, f)), write(os.path.join(d, f + ".gz"), b"\x1f\x8b\x08\x00" + bytes(30))),
        }
        for vname, mut in variants.items():
            d = dataset(f"{fname}-{vname}".replace(" ", "_"), mut)
            case("IDX", f"{fname}: {vname}", pf("idx", d))
    case("IDX", "labels 10 and 200", pf("idx", dataset("lab200", set_file(lab_tr, idx([300], bytes([200]) * 300)))))
    case("IDX", "label/image count mismatch", pf("idx", dataset("count", set_file(lab_tr, idx([299], bytes(299))))))
    case("IDX", "0 training images", pf("idx", dataset("zero", lambda d: (write(os.path.join(d, img_tr), idx([0, 16, 16], b"")), write(os.path.join(d, lab_tr), idx([0], b""))))))
    case("IDX", "test 8x8, train 16x16", pf("idx", dataset("shape", lambda d: write(os.path.join(d, img_te), idx([90, 8, 8], bytes(90 * 64)))), "--pca", "4"))
    case("IDX", "images as 4 dimensions", pf("idx", dataset("dims4", set_file(img_tr, idx([300, 16, 16, 1], bytes(300 * 256))))))
    case("IDX", "missing data folder", pf("idx", path("no-such-folder")))
    case("IDX", "data path is a file", pf("idx", path("words.txt")))
    case("IDX", "gzip truncated", pf("idx", dataset("gztrunc", lambda d: (write(os.path.join(d, img_tr + ".gz"), gzip.compress(open(os.path.join(d, img_tr), "rb").read())[:500]), os.remove(os.path.join(d, img_tr))))))
    case("IDX", "gzip bomb (declared 2^31 images)", pf("idx", dataset("bomb", lambda d: (write(os.path.join(d, img_tr + ".gz"), gzip.compress(idx([2**31 - 1, 16, 16], b"") + bytes(50_000_000))), os.remove(os.path.join(d, img_tr)))), "--max-memory", "40M"))
    case("IDX", "symlink loop as a file", pf("idx", dataset("loop", lambda d: (os.remove(os.path.join(d, img_tr)), os.symlink(img_tr, os.path.join(d, img_tr))))))

    # --- CIFAR-10 / CIFAR-100 / STL-10
    def cifar_dir(name, files):
        d = path("cifar", name)
        for f, data in files.items():
            if data == "FIFO":
                fifo(os.path.join(d, f))
            else:
                write(os.path.join(d, f), data)
        return d
    rec10 = bytes([3]) + bytes(3072)
    good10 = {f"data_batch_{k}.bin": rec10 * 2 for k in range(1, 6)} | {"test_batch.bin": rec10}
    for vname, change in {"missing batch": {"data_batch_3.bin": None}, "empty batch": {"data_batch_2.bin": b""}, "size not a multiple": {"data_batch_1.bin": rec10 + b"xx"},
                          "label 10": {"data_batch_1.bin": bytes([10]) + bytes(3072)}, "FIFO batch": {"data_batch_4.bin": "FIFO"}, "test truncated": {"test_batch.bin": rec10[:-1]}}.items():
        files = dict(good10)
        for k, v in change.items():
            if v is None:
                files.pop(k)
            else:
                files[k] = v
        case("CIFAR/STL", f"CIFAR-10 {vname}", pf("cifar10", cifar_dir("c10-" + vname.replace(" ", "_"), files)))
    rec100 = bytes([3, 42]) + bytes(3072)
    for fmt in ["cifar100", "cifar100-coarse"]:
        for vname, files in {"label out of range": {"train.bin": bytes([25, 120]) + bytes(3072), "test.bin": rec100}, "no test.bin": {"train.bin": rec100},
                             "size not a multiple": {"train.bin": rec100 * 2 + b"x", "test.bin": rec100}, "empty train.bin": {"train.bin": b"", "test.bin": rec100}}.items():
            case("CIFAR/STL", f"{fmt} {vname}", pf(fmt, cifar_dir(f"{fmt}-{vname}".replace(" ", "_"), files)))
    img96 = bytes(96 * 96 * 3)
    for vname, files in {"labels 0 (start at 1)": {"train_X.bin": img96, "train_y.bin": b"\0", "test_X.bin": img96, "test_y.bin": b"\1"},
                         "label 11": {"train_X.bin": img96, "train_y.bin": b"\x0b", "test_X.bin": img96, "test_y.bin": b"\1"},
                         "X truncated": {"train_X.bin": img96[:-5], "train_y.bin": b"\1", "test_X.bin": img96, "test_y.bin": b"\1"},
                         "label count mismatch": {"train_X.bin": img96, "train_y.bin": b"\1\1", "test_X.bin": img96, "test_y.bin": b"\1"},
                         "missing test_y": {"train_X.bin": img96, "train_y.bin": b"\1", "test_X.bin": img96}}.items():
        case("CIFAR/STL", f"STL-10 {vname}", pf("stl10", cifar_dir("stl-" + vname.replace(" ", "_"), files)))
    case("CIFAR/STL", "CIFAR-10 missing folder", pf("cifar10", path("cifar", "nothing-here")))

    # --- MedMNIST .npz
    def med(name, members, compress=True, raw=None):
        p = path("npz", name + ".npz")
        write(p, raw if raw is not None else npz(members, compress))
        return p
    imgs = npy("|u1", [4, 8, 8], bytes(256))
    labs = lambda v: npy("<i8", [4, 1], i64(v))
    good_members = [("train_images.npy", imgs), ("train_labels.npy", labs([0, 1, 2, 0])), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))]
    good_npz = npz(good_members)
    mutations = {
        "not a zip": b"PK\x03\x04 this is not a zip archive",
        "truncated archive": good_npz[: len(good_npz) // 2],
        "corrupt deflate data": good_npz[:60] + bytes(b ^ 0x5A for b in good_npz[60:90]) + good_npz[90:],
        "empty file": b"",
    }
    for vname, raw in mutations.items():
        case("MedMNIST", vname, pf("medmnist", med(vname.replace(" ", "_"), None, raw=raw)))
    member_cases = {
        "label -5": [("train_images.npy", imgs), ("train_labels.npy", labs([0, -5, 1, 0])), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))],
        "label 99999": [("train_images.npy", imgs), ("train_labels.npy", labs([0, 99999, 1, 0])), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))],
        "no train_labels": [("train_images.npy", imgs), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))],
        "3 labels for 4 images": [("train_images.npy", imgs), ("train_labels.npy", npy("<i8", [3, 1], i64([0, 1, 2]))), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))],
        "float images": [("train_images.npy", npy("<f4", [4, 8, 8], f32([0.5] * 256))), ("train_labels.npy", labs([0, 1, 2, 0])), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))],
        "overflowing member shape": [("train_images.npy", npy("|u1", [2**32, 2**32, 8], b"")), ("train_labels.npy", labs([0, 1, 2, 0]))],
        "5-D images": [("train_images.npy", npy("|u1", [4, 8, 8, 1, 1], bytes(256))), ("train_labels.npy", labs([0, 1, 2, 0]))],
        "0 images": [("train_images.npy", npy("|u1", [0, 8, 8], b"")), ("train_labels.npy", npy("<i8", [0, 1], b"")), ("test_images.npy", imgs), ("test_labels.npy", labs([0, 1, 2, 0]))],
        "member .npy header not text": [("train_images.npy", b"\x93NUMPY\x01\x00\x10\x00" + bytes([0xff] * 16)), ("train_labels.npy", labs([0, 1, 2, 0]))],
        "images 4 x 8 x 8 x 2": [("train_images.npy", npy("|u1", [4, 8, 8, 2], bytes(512))), ("train_labels.npy", labs([0, 1, 2, 0]))],
    }
    for vname, members in member_cases.items():
        case("MedMNIST", vname, pf("medmnist", med(vname.replace(" ", "_"), members)))
    case("MedMNIST", "repeated member", pf("medmnist", med("repeated", good_members + [("train_labels.npy", labs([1, 1, 1, 1]))], compress=False)))
    case("MedMNIST", "missing file", pf("medmnist", path("npz", "missing.npz")))

    # --- feature files (knn, match)
    def feat(name, data):
        return write(path("features", name), data)
    labels4 = i64([0, 1, 2, 0])
    st = lambda feats, labels=None, fd="F32", ld="I64", fs=(4, 3), ls=(4,): safetensors({"features": (fd, list(fs), feats)} | ({"labels": (ld, list(ls), labels)} if labels is not None else {}))
    bad_features = {
        "missing file": None,
        "junk": b"definitely not tensors",
        "1-D npy": npy("<f4", [12], f32([0.5] * 12)),
        "truncated npy": npy("<f4", [4, 3], f32([0.5] * 12))[:-8],
        "NaN in npy": npy("<f4", [4, 3], f32([0.5] * 5 + [float("nan")] + [0.5] * 6)),
        "inf in safetensors": st(f32([0.5] * 11 + [float("inf")]), labels4),
        "0 rows": st(b"", i64([]), fs=(0, 3), ls=(0,)),
        "negative label": st(f32([0.5] * 12), i64([0, -1, 2, 0])),
        "label 2^40": st(f32([0.5] * 12), i64([0, 2**40, 2, 0])),
        "3 labels for 4 rows": st(f32([0.5] * 12), i64([0, 1, 2]), ls=(3,)),
        "int features": st(i64([1] * 12), labels4, fd="I64"),
        "float labels": st(f32([0.5] * 12), f32([0, 1, 2, 0]), ld="F32"),
        "overflowing npy header": npy("<f4", [2**33, 2**33], b""),
        "bool npy": npy("|b1", [4, 3], bytes(12)),
        "safetensors offsets past the end": safetensors({"features": ("F32", [4, 3], f32([0.5] * 12))})[:-20],
        "safetensors header size 2^60": struct.pack("<Q", 2**60) + b"{}",
        "no 'features' tensor": safetensors({"other": ("F32", [4, 3], f32([0.5] * 12))}),
        "3-D features": st(f32([0.5] * 12), labels4, fs=(4, 3, 1)),
    }
    for vname, data in bad_features.items():
        p = path("features", "missing.safetensors") if data is None else feat(vname.replace(" ", "_").replace("'", "") + (".npy" if data.startswith(b"\x93NUMPY") else ".safetensors"), data)
        case("features", f"knn train: {vname}", knn(p, good_test))
        if vname in ("NaN in npy", "negative label", "0 rows", "junk", "overflowing npy header", "label 2^40", "inf in safetensors"):
            case("features", f"match test: {vname}", match(good_train, p))
    case("features", "knn: feature dims differ", knn(good_train, feat("dim5.safetensors", st(f32([0.5] * 20), labels4, fs=(4, 5)))))
    case("features", "knn: test without labels", knn(good_train, feat("nolabels.safetensors", st(f32([0.5] * 12)))))
    case("features", "match: --test-labels float npy", match(good_train, good_test, "--test-labels", feat("flabels.npy", npy("<f4", [90], f32([0.0] * 90)))))
    case("features", "match: --test-labels wrong count", match(good_train, good_test, "--test-labels", feat("labels3.npy", npy("<i8", [3], i64([0, 1, 2])))))
    case("features", "match: test labels 5 for 3 classes", match(good_train, good_test, classes="cat,dog"))

    # --- class names and word vectors
    wv = lambda name, text: write(path("words", name), text)
    case("classes", "empty --classes", prior("--classes", ",", "--word-vectors", path("words.txt")))
    case("classes", "duplicate class", prior("--classes", "cat,Cat,dog", "--word-vectors", path("words.txt")))
    case("classes", "unknown word", prior("--classes", "cat,zebra", "--word-vectors", path("words.txt")))
    case("classes", "classes file missing", prior("--classes-file", path("words", "nope.txt"), "--word-vectors", path("words.txt")))
    case("classes", "classes file empty", prior("--classes-file", wv("empty.classes", ""), "--word-vectors", path("words.txt")))
    case("classes", "classes file binary", prior("--classes-file", write(path("words", "bin.classes"), bytes(range(256))), "--word-vectors", path("words.txt")))
    case("classes", "classes file is a FIFO", prior("--classes-file", fifo(path("words", "fifo.classes")), "--word-vectors", path("words.txt")))
    case("classes", "word vectors missing", prior("--classes", "cat,dog", "--word-vectors", path("words", "none.txt")))
    case("classes", "word vector nan", prior("--classes", "cat,dog", "--word-vectors", wv("nan.txt", "cat nan 0 0\ndog 1 0 0\n")))
    case("classes", "word vector inf", prior("--classes", "cat,dog", "--word-vectors", wv("inf.txt", "cat 1 0 0\ndog inf 0 0\n")))
    case("classes", "word vector 1e39 (f32 overflow)", prior("--classes", "cat,dog", "--word-vectors", wv("big.txt", "cat 1 0 0\ndog 1e39 0 0\n")))
    case("classes", "word vectors of mixed sizes", prior("--classes", "cat,dog", "--word-vectors", wv("mixed.txt", "cat 1 0 0\ndog 1 0\n")))
    case("classes", "word vectors empty file", prior("--classes", "cat,dog", "--word-vectors", wv("empty.txt", "")))
    case("classes", "word vector not a number", prior("--classes", "cat,dog", "--word-vectors", wv("nan2.txt", "cat 1 0 x\ndog 1 0 0\n")))
    case("classes", "word vectors a FIFO", prior("--classes", "cat,dog", "--word-vectors", fifo(path("words", "fifo.txt"))))
    case("classes", "word vectors binary", prior("--classes", "cat,dog", "--word-vectors", write(path("words", "bin.txt"), b"cat \xff\xfe 1\n")))
    case("classes", "one class", prior("--classes", "cat", "--word-vectors", path("words.txt")))
    case("classes", "class proportions NaN", prior("--classes", "cat,dog", "--word-vectors", path("words.txt"), "--class-proportions", "1,nan"))
    case("classes", "class proportions negative", prior("--classes", "cat,dog", "--word-vectors", path("words.txt"), "--class-proportions", "1,-1"))
    case("classes", "class proportions wrong count", prior("--classes", "cat,dog", "--word-vectors", path("words.txt"), "--class-proportions", "1,1,1"))
    case("classes", "weight floor 1.5", prior("--classes", "cat,dog", "--word-vectors", path("words.txt"), "--weight-floor", "1.5"))
    case("classes", "ordinal with word vectors missing is fine, 1 class is not", prior("--classes", "low", "--ordinal"))

    # --- run configs
    base = open(path("tiny", "tiny.toml")).read().replace('path = "data"', 'path = "%s"' % path("tiny", "data")).replace('word_vectors = "words.txt"', 'word_vectors = "%s"' % path("tiny", "words.txt"))
    cfg = lambda name, text: write(path("configs", name + ".toml"), text)
    good_cfg = cfg("good", base)
    case("configs", "config missing", run_cfg(path("configs", "none.toml")))
    case("configs", "not TOML", run_cfg(cfg("nottoml", "name = ")))
    case("configs", "unknown key", run_cfg(cfg("unknown", base + "\n[extra]\nx = 1\n")))
    case("configs", "wrong type", run_cfg(cfg("type", base.replace("epochs = 4", 'epochs = "four"'))))
    case("configs", "no [data]", run_cfg(cfg("nodata", 'name = "x"\n[classes]\nnames = ["a", "b"]\n')))
    case("configs", "bad format", run_cfg(good_cfg, "--set", "data.format=jpeg2000"))
    case("configs", "data path missing", run_cfg(good_cfg, "--set", "data.path=" + path("none")))
    case("configs", "config is a FIFO", run_cfg(fifo(path("configs", "fifo.toml"))))
    case("configs", "config binary", run_cfg(write(path("configs", "bin.toml"), bytes(range(256)))))
    for name in ["../../escape", "/tmp/abs", "a/b", "..", "", ".hidden"]:
        case("configs", f"name = {name!r} (no --out)", ["run", "--config", cfg("name" + str(abs(hash(name))), base.replace('name = "tiny"', "name = %s" % json.dumps(name)))])
    for key, value in [("pretrain.lr", "inf"), ("pretrain.lr", "nan"), ("pretrain.lr", "1e300"), ("pretrain.lr", "-1"), ("pretrain.weight_decay", "nan"),
                       ("pretrain.temperature", "0"), ("pretrain.width", "0"), ("pretrain.width", "0.05"), ("pretrain.width", "100"), ("pretrain.epochs", "0"), ("pretrain.batch_size", "1"),
                       ("pretrain.batch_size", "100000"), ("pretrain.image_size", "100000"), ("pretrain.crop_min_scale", "2"), ("pretrain.threads", "0"),
                       ("stages.seeds", "0"), ("stages.lr", "1e300"), ("stages.epsilon", "0"), ("stages.epsilon", "-1"), ("stages.epsilon", "nan"),
                       ("stages.cluster_lr", "inf"), ("stages.sinkhorn_threads", "3"), ("stages.steps", "0"), ("stages.batch_size", "1"),
                       ("data.limit", "0"), ("data.folder_size", "100000"), ("classes.weight_floor", "1"), ("device", "tpu"), ("stages.seed", "18446744073709551615")]:
        case("configs", f"{key} = {value}", run_cfg(good_cfg, "--set", f"{key}={value}"))
    case("configs", "--set without =", run_cfg(good_cfg, "--set", "pretrain.epochs"))
    case("configs", "--set non-integer", run_cfg(good_cfg, "--set", "pretrain.epochs=many"))
    case("configs", "--force with a bad class", run_cfg(good_cfg, "--force", "--set", 'classes.names=["bar","zebra","diagonal"]'))
    case("configs", "--force with batch larger than data", run_cfg(good_cfg, "--force", "--set", "pretrain.batch_size=5000"))
    case("configs", "wrong class count", run_cfg(good_cfg, "--set", 'classes.names=["bar","column"]'))
    case("configs", "folder dataset of 10^5 px side", run_cfg(cfg("folder", base.replace('format = "idx"', 'format = "folder"').replace('path = "%s"' % path("tiny", "data"), 'path = "%s"\nfolder_size = 60000' % path("imgs", "ok"))), "--max-memory", "2G"))

    # --- image folders (pixel-features --format folder)
    write(path("imgs", "ok", "a.png"), png())
    case("images", "empty folder", pf("folder", os.path.dirname(write(path("imgs", "empty", ".keep"), ""))))
    case("images", "only a FIFO x.png", pf("folder", os.path.dirname(fifo(path("imgs", "fifo", "x.png")))))
    case("images", "broken png", pf("folder", os.path.dirname(write(path("imgs", "broken", "a.png"), b"\x89PNG\r\n\x1a\nbroken"))))
    case("images", "zero-byte png", pf("folder", os.path.dirname(write(path("imgs", "zero", "a.png"), b""))))
    case("images", "text named png", pf("folder", os.path.dirname(write(path("imgs", "text", "a.png"), "hello"))))
    case("images", "PNG header 100000 x 100000", pf("folder", os.path.dirname(write(path("imgs", "huge", "a.png"), png_header_only(100000, 100000)))))
    case("images", "truncated JPEG", pf("folder", os.path.dirname(write(path("imgs", "jpeg", "a.jpg"), b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"))))
    loopdir = path("imgs", "loop")
    os.makedirs(loopdir)
    os.symlink("self.png", os.path.join(loopdir, "self.png"))
    case("images", "symlink loop x.png", pf("folder", loopdir))
    write(path("imgs", "mixed", "a.png"), png())
    case("images", "folder with a FIFO next to a good image", pf("folder", os.path.dirname(fifo(path("imgs", "mixed", "x.png")))))

    # --- predict
    runs = path("runs")
    def bad_run(name, change):
        d = os.path.join(runs, name)
        shutil.copytree(path("good-run"), d)
        change(d)
        return d
    model = json.load(open(path("good-run", "model.json")))
    def set_model(d, **kw):
        m = dict(model)
        m.update(kw)
        write(os.path.join(d, "model.json"), json.dumps(m))
    images_ok = path("imgs", "ok")
    pr = lambda run, images=images_ok: ["predict", "--run", run, "--images", images, "--out", "{OUT}/predictions.csv", "--device", "cpu"]
    case("predict", "run folder missing", pr(path("runs", "none")))
    case("predict", "model.json missing", pr(bad_run("nomodel", lambda d: os.remove(os.path.join(d, "model.json")))))
    case("predict", "model.json junk", pr(bad_run("junk", lambda d: write(os.path.join(d, "model.json"), "{junk"))))
    case("predict", "backbone missing", pr(bad_run("nobackbone", lambda d: set_model(d, backbone_checkpoint="nowhere.safetensors"))))
    case("predict", "classifier missing", pr(bad_run("noclassifier", lambda d: set_model(d, classifier="nowhere.safetensors"))))
    case("predict", "classes count differs", pr(bad_run("classes", lambda d: set_model(d, classes=["a", "b"]))))
    case("predict", "classifier of the wrong width", pr(bad_run("width", lambda d: write(os.path.join(d, model["classifier"]), safetensors({"weight": ("F32", [3, 7], f32([0.1] * 21)), "bias": ("F32", [3], f32([0] * 3))})))))
    case("predict", "classifier junk", pr(bad_run("cjunk", lambda d: write(os.path.join(d, model["classifier"]), b"junk"))))
    case("predict", "checkpoint metadata junk", pr(bad_run("meta", lambda d: write(os.path.join(d, model["backbone_checkpoint"]).replace(".safetensors", ".json"), "{"))))
    case("predict", "checkpoint metadata width 1e9", pr(bad_run("meta2", lambda d: write(os.path.join(d, model["backbone_checkpoint"]).replace(".safetensors", ".json"),
        open(os.path.join(path("good-run"), model["backbone_checkpoint"]).replace(".safetensors", ".json")).read().replace('"width": 0.125', '"width": 1000000000.0')))))
    case("predict", "images folder empty", pr(path("good-run"), path("imgs", "empty")))
    case("predict", "images only broken", pr(path("good-run"), path("imgs", "broken")))
    case("predict", "images only a FIFO", pr(path("good-run"), path("imgs", "fifo")))
    case("predict", "images only a symlink loop", pr(path("good-run"), loopdir))
    case("predict", "images path missing", pr(path("good-run"), path("imgs", "none")))
    case("predict", "--batch-size 0", pr(path("good-run")) + ["--batch-size", "0"])

    # --- numeric flags
    m = lambda *flags: match(good_train, good_test, *flags)
    for flag, value in [("--lr", "1e300"), ("--lr", "nan"), ("--lr", "-1"), ("--lr", "inf"), ("--epsilon", "inf"), ("--epsilon", "1e-320"), ("--steps", "0"), ("--seeds", "0"),
                        ("--batch-size", "1"), ("--threads", "0"), ("--sinkhorn-threads", "3"), ("--cluster-lr", "1e39"), ("--init-scale", "0"), ("--grad-clip", "nan"),
                        ("--naming-size-weight", "-1"), ("--sinkhorn-tol", "-1"), ("--cluster-steps", "0"), ("--prior-pool", "0"), ("--selection-window", "0")]:
        case("numeric flags", f"match {flag}={value}", m(f"{flag}={value}"))
    case("numeric flags", "knn --k 0", knn(good_train, good_test, "--k", "0"))
    case("numeric flags", "knn --k=-5", knn(good_train, good_test, "--k=-5"))
    case("numeric flags", "pixel-features --pca 100000", ["pixel-features", "--format", "idx", "--data", path("tiny", "data"), "--pca", "100000", "--out", "{OUT}"])
    case("numeric flags", "--max-memory junk", knn(good_train, good_test, "--max-memory", "lots"))
    case("numeric flags", "--max-memory 0", knn(good_train, good_test, "--max-memory", "0"))
    case("numeric flags", "--max-memory 1K for pixel-features", ["pixel-features", "--format", "idx", "--data", path("tiny", "data"), "--pca", "8", "--out", "{OUT}", "--max-memory", "1K"])
    pt = lambda *flags: ["pretrain", "--format", "idx", "--data", path("tiny", "data"), "--out", "{OUT}/pt", "--epochs", "1", "--device", "cpu", *flags]
    for flag, value in [("--lr", "inf"), ("--width", "nan"), ("--temperature", "0"), ("--batch-size", "0"), ("--crop-min-scale", "0"), ("--weight-decay", "-1"), ("--image-size", "2")]:
        case("numeric flags", f"pretrain {flag}={value}", pt(f"{flag}={value}"))


def classify(rc, stderr, elapsed, changed):
    if rc is None:
        return "hang"
    if "panicked" in stderr or rc in (101, 134) or rc < 0:
        return "panic"
    if rc == 0:
        return "success"
    if changed:
        return "damaged"
    if rc == 2 and stderr.count("error:") == 1:
        return "clean"
    return "other"


def main():
    table_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "bad_inputs.md")
    fixtures()
    define_cases()
    rows, totals = [], {}
    for k, (group, name, args, prepare) in enumerate(CASES):
        out = path("out", str(k))
        shutil.copytree(path("template"), out)
        if prepare:
            prepare()
        args = [a.replace("{OUT}", out) for a in args]
        before = out_hash(out)
        started = time.time()
        try:
            p = subprocess.run([BIN, *args, "--quiet"], capture_output=True, text=True, timeout=TIMEOUT, errors="replace")
            rc, stderr = p.returncode, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, stderr = None, (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        elapsed = time.time() - started
        changed = out_hash(out) != before
        outcome = classify(rc, stderr, elapsed, changed)
        totals[outcome] = totals.get(outcome, 0) + 1
        message = " ".join(stderr.strip().splitlines()[-1:])[:160].replace("|", "\\|").replace(W, "$W")
        rows.append(f"| {k + 1} | {group} | {name} | {outcome} | {rc} | {elapsed:.1f} | {message} |")
        print(f"{k + 1:3} {outcome:8} {group:14} {name}: {message[:110]}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(totals.items()))
    with open(table_path, "w") as f:
        f.write(f"# Bad-input table (bench/bad_inputs.sh)\n\n{len(CASES)} cases: {summary}.\n\n")
        f.write("| # | group | input | outcome | exit | s | message (last line of stderr) |\n| ---: | --- | --- | --- | ---: | ---: | --- |\n")
        f.write("\n".join(rows) + "\n")
    print(f"TOTAL {len(CASES)} cases: {summary}; table: {table_path}")
    shutil.rmtree(W, ignore_errors=True)
    bad = sum(v for k, v in totals.items() if k != "clean")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

//! Image datasets in their official on-disk formats, read into one in-memory layout.
//!
//! Every reader validates sizes and headers and names the file and the problem. Labels, where a
//! format has them, are kept beside the pixels and only ever handed to evaluation.
use super::{checked, mnist, npz};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Images of one split: (N, H, W, C) u8, row-major, channels last.
#[derive(Clone, Debug)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Ground-truth labels (evaluation only), when the format has them.
    pub labels: Option<Vec<i64>>,
    /// Class names in label order, when known.
    pub class_names: Vec<String>,
}

impl ImageSet {
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.height * self.width * self.channels;
        &self.pixels[index * size..(index + 1) * size]
    }

    /// How many different images the set holds, counted up to `at_least` (a healthy set is
    /// read only until its first `at_least` distinct images).
    pub fn distinct_images(&self, at_least: usize) -> usize {
        let mut seen = std::collections::HashSet::new();
        for index in 0..self.count {
            if seen.len() >= at_least {
                break;
            }
            seen.insert(self.image(index));
        }
        seen.len()
    }

    /// The first `n` images (a subset for quick runs).
    pub fn take(mut self, n: usize) -> Self {
        if n < self.count {
            self.pixels.truncate(n * self.height * self.width * self.channels);
            self.labels = self.labels.map(|mut l| {
                l.truncate(n);
                l
            });
            self.count = n;
        }
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Test,
    /// STL-10's 100K unlabelled images.
    Unlabeled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetFormat {
    /// CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin).
    Cifar10,
    /// CIFAR-100 binary version with the 100 fine labels (train.bin, test.bin).
    Cifar100,
    /// CIFAR-100 binary version with the 20 coarse superclasses (CIFAR100-20).
    Cifar100Coarse,
    /// STL-10 binary version (train_X.bin, train_y.bin, test_*, unlabeled_X.bin).
    Stl10,
    /// MNIST layout: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (MNIST, Fashion-MNIST).
    Idx,
    /// A MedMNIST .npz file (e.g. retinamnist.npz).
    Medmnist,
    /// A folder of PNG/JPEG images; subfolders per class give labels (for evaluation only).
    Folder,
}

pub const CIFAR10_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
pub const STL10_CLASSES: [&str; 10] = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"];
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
/// The 20 CIFAR-100 superclasses, in coarse-label order.
pub const CIFAR100_SUPERCLASSES: [&str; 20] = [
    "aquatic mammals", "fish", "flowers", "food containers", "fruit and vegetables", "household electrical devices",
    "household furniture", "insects", "large carnivores", "large man-made outdoor things", "large natural outdoor scenes",
    "large omnivores and herbivores", "medium-sized mammals", "non-insect invertebrates", "people", "reptiles",
    "small mammals", "trees", "vehicles 1", "vehicles 2",
];

fn read(path: &Path) -> Result<Vec<u8>> {
    checked::read_file(path)
}

fn names_file(path: &Path) -> Option<Vec<String>> {
    let text = checked::read_text(path).ok()?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    (!names.is_empty()).then_some(names)
}

/// Reads a split of a dataset: the path must exist (a typo names the folder, not a file in
/// it), and a split without images is an error that says so.
pub fn read_dataset(format: &DatasetFormat, path: &Path, split: Split, image_size: Option<usize>) -> Result<ImageSet> {
    checked::require_exists(path, "the dataset folder (or file)")?;
    let set = read_dataset_unchecked(format, path, split, image_size)?;
    if set.count == 0 {
        return Err(Error::format(path, format!("the {split:?} split holds no images (an empty dataset)")));
    }
    Ok(set)
}

/// Train and test split must have the same image shape (features, PCA and the kNN monitor
/// compare them row by row).
pub fn check_same_shape(train: &ImageSet, test: &ImageSet, path: &Path) -> Result<()> {
    let (a, b) = ((train.height, train.width, train.channels), (test.height, test.width, test.channels));
    if a != b {
        return Err(Error::format(
            path,
            format!("the test images are {}x{}x{} but the training images are {}x{}x{} (height x width x channels); both splits must match", b.0, b.1, b.2, a.0, a.1, a.2),
        ));
    }
    Ok(())
}

fn read_dataset_unchecked(format: &DatasetFormat, path: &Path, split: Split, image_size: Option<usize>) -> Result<ImageSet> {
    match format {
        DatasetFormat::Cifar10 => read_cifar10(path, split),
        DatasetFormat::Cifar100 => read_cifar100(path, split, false),
        DatasetFormat::Cifar100Coarse => read_cifar100(path, split, true),
        DatasetFormat::Stl10 => read_stl10(path, split),
        DatasetFormat::Idx => read_idx_dataset(path, split),
        DatasetFormat::Medmnist => read_medmnist(path, split),
        DatasetFormat::Folder => read_folder(path, image_size.unwrap_or(64)),
    }
}

fn no_split(path: &Path, split: Split, format: &str) -> Error {
    Error::format(path, format!("{format} has no {split:?} split"))
}

/// CIFAR-10: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major).
pub fn read_cifar10(dir: &Path, split: Split) -> Result<ImageSet> {
    let files: Vec<PathBuf> = match split {
        Split::Train => (1..=5).map(|k| dir.join(format!("data_batch_{k}.bin"))).collect(),
        Split::Test => vec![dir.join("test_batch.bin")],
        Split::Unlabeled => return Err(no_split(dir, split, "CIFAR-10")),
    };
    let mut set = empty(32, 32, 3);
    let mut labels = Vec::new();
    for file in &files {
        let bytes = read(file)?;
        planar_records(&bytes, file, 1, 10, &mut set.pixels, &mut labels, |r| r[0] as i64)?;
    }
    set.count = labels.len();
    set.labels = Some(labels);
    set.class_names = names_file(&dir.join("batches.meta.txt")).unwrap_or_else(|| CIFAR10_CLASSES.map(String::from).to_vec());
    Ok(set)
}

/// CIFAR-100: records of coarse label, fine label, then 3072 pixel bytes.
pub fn read_cifar100(dir: &Path, split: Split, coarse: bool) -> Result<ImageSet> {
    let file = match split {
        Split::Train => dir.join("train.bin"),
        Split::Test => dir.join("test.bin"),
        Split::Unlabeled => return Err(no_split(dir, split, "CIFAR-100")),
    };
    let bytes = read(&file)?;
    let mut set = parse_cifar100_bytes(&bytes, &file, coarse)?;
    set.class_names = if coarse {
        names_file(&dir.join("coarse_label_names.txt")).unwrap_or_else(|| CIFAR100_SUPERCLASSES.map(String::from).to_vec())
    } else {
        names_file(&dir.join("fine_label_names.txt")).unwrap_or_default()
    };
    Ok(set)
}

/// The records of one CIFAR-100 file (labels, pixels); class names are left empty.
pub fn parse_cifar100_bytes(bytes: &[u8], file: &Path, coarse: bool) -> Result<ImageSet> {
    let mut set = empty(32, 32, 3);
    let mut labels = Vec::new();
    let classes = if coarse { 20 } else { 100 };
    planar_records(bytes, file, 2, classes, &mut set.pixels, &mut labels, |r| r[if coarse { 0 } else { 1 }] as i64)?;
    set.count = labels.len();
    set.labels = Some(labels);
    Ok(set)
}

/// The records of one CIFAR-10 batch file.
pub fn parse_cifar10_bytes(bytes: &[u8], file: &Path) -> Result<ImageSet> {
    let mut set = empty(32, 32, 3);
    let mut labels = Vec::new();
    planar_records(bytes, file, 1, 10, &mut set.pixels, &mut labels, |r| r[0] as i64)?;
    set.count = labels.len();
    set.labels = Some(labels);
    Ok(set)
}

fn empty(height: usize, width: usize, channels: usize) -> ImageSet {
    ImageSet { pixels: Vec::new(), count: 0, height, width, channels, labels: None, class_names: Vec::new() }
}

/// Fixed-size records of `header` label bytes then a 3 x 32 x 32 planar image.
fn planar_records(
    bytes: &[u8],
    file: &Path,
    header: usize,
    n_classes: i64,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<i64>,
    label_of: impl Fn(&[u8]) -> i64,
) -> Result<()> {
    let record = header + 3072;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(Error::format(
            file,
            format!("size {} is not a multiple of the {record}-byte record (truncated or not this format)", bytes.len()),
        ));
    }
    for (k, r) in bytes.chunks_exact(record).enumerate() {
        let label = label_of(r);
        if label >= n_classes {
            return Err(Error::format(file, format!("record {k}: label {label} is out of range 0..{n_classes}")));
        }
        labels.push(label);
        let planes = &r[header..];
        for p in 0..1024 {
            pixels.extend_from_slice(&[planes[p], planes[1024 + p], planes[2048 + p]]);
        }
    }
    Ok(())
}

/// STL-10: 96 x 96 x 3 images stored channel by channel, each channel column-major; labels 1..10.
pub fn read_stl10(dir: &Path, split: Split) -> Result<ImageSet> {
    let (x, y) = match split {
        Split::Train => ("train_X.bin", Some("train_y.bin")),
        Split::Test => ("test_X.bin", Some("test_y.bin")),
        Split::Unlabeled => ("unlabeled_X.bin", None),
    };
    let x_path = dir.join(x);
    let bytes = read(&x_path)?;
    let labels = match y {
        Some(y) => Some((dir.join(y), read(&dir.join(y))?)),
        None => None,
    };
    parse_stl10_bytes(&bytes, &x_path, labels.as_ref().map(|(p, b)| (p.as_path(), b.as_slice())))
}

/// STL-10 images (and labels, with their file) from bytes.
pub fn parse_stl10_bytes(bytes: &[u8], x_path: &Path, y: Option<(&Path, &[u8])>) -> Result<ImageSet> {
    const SIZE: usize = 96 * 96 * 3;
    if bytes.is_empty() || bytes.len() % SIZE != 0 {
        return Err(Error::format(&x_path, format!("size {} is not a multiple of {SIZE} (96x96x3 images)", bytes.len())));
    }
    let count = bytes.len() / SIZE;
    let mut set = empty(96, 96, 3);
    set.pixels = vec![0u8; bytes.len()];
    for (k, img) in bytes.chunks_exact(SIZE).enumerate() {
        let out = &mut set.pixels[k * SIZE..(k + 1) * SIZE];
        for c in 0..3 {
            for col in 0..96 {
                for row in 0..96 {
                    out[(row * 96 + col) * 3 + c] = img[c * 9216 + col * 96 + row];
                }
            }
        }
    }
    set.count = count;
    if let Some((y_path, labels)) = y {
        if labels.len() != count {
            return Err(Error::format(&y_path, format!("{} labels for the {count} images of {}", labels.len(), x_path.display())));
        }
        if let Some((k, l)) = labels.iter().enumerate().find(|(_, l)| !(1..=10).contains(*l)) {
            return Err(Error::format(&y_path, format!("label {l} at {k} is out of range 1..=10")));
        }
        set.labels = Some(labels.iter().map(|&l| l as i64 - 1).collect());
    }
    set.class_names = STL10_CLASSES.map(String::from).to_vec();
    Ok(set)
}

/// MNIST layout (MNIST, Fashion-MNIST), gzipped or not.
pub fn read_idx_dataset(dir: &Path, split: Split) -> Result<ImageSet> {
    let name = match split {
        Split::Train => "train",
        Split::Test => "t10k",
        Split::Unlabeled => return Err(no_split(dir, split, "an IDX dataset")),
    };
    let grey = mnist::read_split(dir, name)?;
    let is_fashion = dir.to_string_lossy().to_lowercase().contains("fashion");
    Ok(ImageSet {
        pixels: grey.images,
        count: grey.count,
        height: grey.rows,
        width: grey.cols,
        channels: 1,
        labels: Some(grey.labels),
        class_names: if is_fashion {
            FASHION_MNIST_CLASSES.map(String::from).to_vec()
        } else {
            (0..10).map(|d| d.to_string()).collect()
        },
    })
}

/// MedMNIST `.npz`: `{split}_images` (N, H, W) or (N, H, W, 3) u8 and `{split}_labels` (N, 1).
pub fn read_medmnist(path: &Path, split: Split) -> Result<ImageSet> {
    if split == Split::Unlabeled {
        return Err(no_split(path, split, "MedMNIST"));
    }
    parse_medmnist(npz::read_npz(path)?, path, split)
}

/// Labels of a MedMNIST class label are small non-negative integers (the largest MedMNIST
/// dataset has 11 classes): anything outside 0..MEDMNIST_MAX_CLASSES is damage, refused here
/// rather than written into feature files and met later as an index out of bounds.
pub const MEDMNIST_MAX_CLASSES: i64 = 100;

/// The split `split` of the members of a MedMNIST archive.
pub fn parse_medmnist(members: Vec<(String, super::npy::NpyArray)>, path: &Path, split: Split) -> Result<ImageSet> {
    let name = match split {
        Split::Train => "train",
        Split::Test => "test",
        Split::Unlabeled => return Err(no_split(path, split, "MedMNIST")),
    };
    let get = |key: String| {
        members.iter().find(|(n, _)| *n == key).map(|(_, a)| a).ok_or_else(|| {
            let found: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
            Error::format(path, format!("no member '{key}' (found: {})", found.join(", ")))
        })
    };
    let images = get(format!("{name}_images"))?;
    let labels = get(format!("{name}_labels"))?;
    let (count, height, width, channels) = match images.shape.as_slice() {
        [n, h, w] => (*n, *h, *w, 1),
        [n, h, w, c] if *c == 3 || *c == 1 => (*n, *h, *w, *c),
        s => return Err(Error::format(path, format!("{name}_images has shape {s:?}, expected (N, H, W) or (N, H, W, 3)"))),
    };
    let pixels = images.to_u8_c_order().ok_or_else(|| Error::format(path, format!("{name}_images must be uint8")))?;
    let labels = labels.to_i64_c_order().ok_or_else(|| Error::format(path, format!("{name}_labels must be integers")))?;
    if labels.len() != count {
        return Err(Error::format(path, format!("{} labels for {count} images", labels.len())));
    }
    if let Some((row, bad)) = labels.iter().enumerate().find(|(_, l)| !(0..MEDMNIST_MAX_CLASSES).contains(*l)) {
        return Err(Error::format(path, format!("{name}_labels: label {bad} at row {row} is outside 0..{MEDMNIST_MAX_CLASSES}")));
    }
    if pixels.len() != count * height * width * channels {
        return Err(Error::format(path, format!("{name}_images: {} bytes for shape {:?}", pixels.len(), images.shape)));
    }
    Ok(ImageSet { pixels, count, height, width, channels, labels: Some(labels), class_names: Vec::new() })
}

/// A folder of PNG/JPEG images of any size, resized to `size` x `size` RGB. Images directly
/// in the folder have no labels; one subfolder per class gives labels (sorted names). Only
/// regular files are read (a FIFO would block), each real path once (links to the same file or
/// folder, symlink loops), and the pixels are sized against the memory budget before decoding.
pub fn read_folder(dir: &Path, size: usize) -> Result<ImageSet> {
    if size == 0 || size > MAX_FOLDER_SIZE {
        return Err(Error::invalid("folder_size", size, "between 1 and 65535 pixels"));
    }
    let mut visited = checked::Visited::default();
    visited.first_visit(dir);
    let (subdirs, files) = folder_entries(dir, &mut visited)?;
    let mut items: Vec<(PathBuf, Option<i64>)> = files.into_iter().map(|p| (p, None)).collect();
    let labelled = items.is_empty() && !subdirs.is_empty();
    let mut class_names = Vec::new();
    if labelled {
        for (k, sub) in subdirs.iter().enumerate() {
            class_names.push(sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            let (_, inner) = folder_entries(sub, &mut visited)?;
            items.extend(inner.into_iter().map(|p| (p, Some(k as i64))));
        }
    }
    if items.is_empty() {
        return Err(Error::format(dir, "no PNG or JPEG images found (directly, or in one subfolder per class)"));
    }
    // The pixels, plus one image's resampling buffers (up to 4 f32 channels).
    let bytes = crate::memory::product(&[items.len(), size, size, 3]);
    crate::memory::ensure_fits(
        bytes + crate::memory::product(&[size, size, 16]),
        &format!("{} images of {size}x{size}x3 from {}", items.len(), dir.display()),
        "lower data.folder_size (--folder-size) or data.limit",
    )?;
    let mut set = empty(size, size, 3);
    set.pixels.reserve(bytes as usize);
    let mut labels = Vec::new();
    for (path, label) in &items {
        set.pixels.extend(load_image_rgb(path, size)?);
        labels.push(label.unwrap_or(-1));
    }
    set.count = items.len();
    set.labels = labelled.then_some(labels);
    set.class_names = class_names;
    Ok(set)
}

/// The largest side `--folder-size` accepts (the image crate's sizes are u32; the memory guard
/// refuses far smaller sizes for any real folder).
pub const MAX_FOLDER_SIZE: usize = 65535;

/// The subfolders and the image files of `dir` (sorted; each real path once). A special file
/// or an unreadable link with an image name is an error naming it.
fn folder_entries(dir: &Path, visited: &mut checked::Visited) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut subdirs, mut files) = (Vec::new(), Vec::new());
    for entry in checked::list_dir(dir)? {
        match entry {
            checked::Entry::Dir(p) if visited.first_visit(&p) => subdirs.push(p),
            checked::Entry::File(p) if is_image(&p) && visited.first_visit(&p) => files.push(p),
            checked::Entry::Other(p, why) if is_image(&p) => return Err(Error::format(p, why)),
            _ => {}
        }
    }
    Ok((subdirs, files))
}

/// The class subfolders of a labelled image folder (sorted), without decoding any image: empty
/// when the folder holds images directly (no labels).
pub fn folder_classes(dir: &Path) -> Result<Vec<String>> {
    checked::require_exists(dir, "the image folder")?;
    let mut visited = checked::Visited::default();
    visited.first_visit(dir);
    let (subdirs, files) = folder_entries(dir, &mut visited)?;
    if !files.is_empty() {
        return Ok(vec![]);
    }
    Ok(subdirs.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect())
}

pub fn is_image(path: &Path) -> bool {
    path.extension().map(|e| e.to_string_lossy().to_lowercase()).is_some_and(|e| matches!(e.as_str(), "png" | "jpg" | "jpeg"))
}

/// Decoder limits: no single image may take more than this (a 100000 x 100000 PNG header
/// would otherwise ask for 40 GB).
fn decode_limits() -> image::Limits {
    let (budget, _) = crate::memory::budget();
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 15);
    limits.max_image_height = Some(1 << 15);
    limits.max_alloc = Some(budget.min(1 << 30));
    limits
}

/// Decodes image bytes (PNG/JPEG, format guessed from the content) within the decoder limits.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<image::DynamicImage> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::io(path, e))?;
    reader.limits(decode_limits());
    reader.decode().map_err(|e| Error::format(path, format!("not a readable PNG/JPEG image: {e}")))
}

/// Decodes an image file to `size` x `size` RGB bytes (resized with a triangle filter).
pub fn load_image_rgb(path: &Path, size: usize) -> Result<Vec<u8>> {
    let img = decode_image(&checked::read_file(path)?, path)?;
    let resized = img.resize_exact(size as u32, size as u32, image::imageops::FilterType::Triangle);
    Ok(resized.to_rgb8().into_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zl-img-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn cifar100_records_and_errors() {
        let dir = tmp("c100");
        let mut bytes = Vec::new();
        for k in 0..3u8 {
            bytes.extend([k, 50 + k]);
            bytes.extend(std::iter::repeat_n(k, 3072));
        }
        std::fs::write(dir.join("train.bin"), &bytes).unwrap();
        let fine = read_cifar100(&dir, Split::Train, false).unwrap();
        assert_eq!(fine.labels.unwrap(), vec![50, 51, 52]);
        let coarse = read_cifar100(&dir, Split::Train, true).unwrap();
        assert_eq!(coarse.labels.unwrap(), vec![0, 1, 2]);
        assert_eq!(coarse.class_names.len(), 20);
        std::fs::write(dir.join("train.bin"), &bytes[..bytes.len() - 1]).unwrap();
        let e = read_cifar100(&dir, Split::Train, true).unwrap_err().to_string();
        assert!(e.contains("train.bin") && e.contains("multiple"), "{e}");
        bytes[0] = 25;
        std::fs::write(dir.join("train.bin"), &bytes).unwrap();
        let e = read_cifar100(&dir, Split::Train, true).unwrap_err().to_string();
        assert!(e.contains("label 25"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn stl10_is_column_major_and_labels_start_at_one() {
        let dir = tmp("stl");
        let mut img = vec![0u8; 96 * 96 * 3];
        img[1] = 200; // channel 0, column 0, row 1
        std::fs::write(dir.join("test_X.bin"), &img).unwrap();
        std::fs::write(dir.join("test_y.bin"), [3u8]).unwrap();
        let set = read_stl10(&dir, Split::Test).unwrap();
        assert_eq!(set.labels.as_deref(), Some(&[2i64][..]));
        assert_eq!(set.image(0)[96 * 3], 200); // row 1, column 0, channel 0
        std::fs::write(dir.join("test_y.bin"), [11u8]).unwrap();
        assert!(read_stl10(&dir, Split::Test).unwrap_err().to_string().contains("label 11"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn image_folder_with_and_without_classes() {
        let dir = tmp("folder");
        for (class, shade) in [("cat", 10u8), ("dog", 200u8)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            let img = image::RgbImage::from_pixel(20, 10, image::Rgb([shade, shade, shade]));
            img.save(dir.join(class).join("a.png")).unwrap();
        }
        let set = read_folder(&dir, 8).unwrap();
        assert_eq!((set.count, set.height, set.channels), (2, 8, 3));
        assert_eq!(set.labels.as_deref(), Some(&[0i64, 1][..]));
        assert_eq!(set.class_names, vec!["cat", "dog"]);
        assert_eq!(set.image(1)[0], 200);
        std::fs::write(dir.join("cat").join("broken.png"), b"not a png").unwrap();
        let e = read_folder(&dir, 8).unwrap_err().to_string();
        assert!(e.contains("broken.png"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }
}

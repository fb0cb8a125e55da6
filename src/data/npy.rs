//! NumPy `.npy` reader (format versions 1-3), C or Fortran order, little-endian numeric dtypes.
//! Used for feature matrices and for the GloVe matrix, which the kumo package stores
//! column-major (`fortran_order: True`).
use crate::error::{Error, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    I64,
    I32,
    U8,
    I8,
    Bool,
}

impl DType {
    fn parse(descr: &str) -> Option<Self> {
        Some(match descr {
            "<f4" => DType::F32,
            "<f8" => DType::F64,
            "<i8" => DType::I64,
            "<i4" => DType::I32,
            "|u1" | "<u1" => DType::U8,
            "|i1" | "<i1" => DType::I8,
            "|b1" => DType::Bool,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::U8 | DType::I8 | DType::Bool => 1,
        }
    }
}

/// A parsed array: raw little-endian bytes plus layout.
#[derive(Debug)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub fortran_order: bool,
    data: Vec<u8>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = super::checked::read_file(path)?;
    parse_npy(&bytes, path)
}

/// Parses the bytes of an `.npy` file; `path` only names the source in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let bad = |m: String| Error::format(path, m);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a NumPy .npy file (magic '\\x93NUMPY' missing)".into()));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated .npy header".into()));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(bad(format!("unsupported .npy format version {v} (expected 1, 2 or 3)"))),
    };
    let data_start = header_start + header_len; // at most 12 + 2^32: no overflow in usize
    if bytes.len() < data_start {
        return Err(bad(format!("truncated .npy header: needs {data_start} bytes, file has {}", bytes.len())));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| bad("the .npy header is not text".into()))?;
    let descr = header_value(header, "descr").ok_or_else(|| bad(format!("no 'descr' in header {header:?}")))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = DType::parse(descr).ok_or_else(|| {
        bad(format!("unsupported dtype '{descr}' (expected <f4, <f8, <i8, <i4, |u1, |i1 or |b1)"))
    })?;
    let fortran_order = match header_value(header, "fortran_order") {
        Some("True") => true,
        Some("False") => false,
        other => return Err(bad(format!("bad 'fortran_order' value {other:?} in header"))),
    };
    let shape_text = header_value(header, "shape").ok_or_else(|| bad("no 'shape' in header".into()))?;
    let shape = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(format!("bad shape {shape_text} in header")))?;
    if shape.len() > 32 {
        return Err(bad(format!("{} dimensions in shape {shape_text}; at most 32", shape.len())));
    }
    // Checked against overflow and the memory budget before the bytes are copied.
    let needed = super::checked::declared_bytes(path, &shape, dtype.size())?;
    let available = bytes.len() - data_start;
    if available < needed {
        return Err(bad(format!(
            "truncated: shape {shape:?} of {descr} needs {needed} data bytes, file has {available}"
        )));
    }
    Ok(NpyArray { shape, dtype, fortran_order, data: bytes[data_start..data_start + needed].to_vec() })
}

/// Extracts the raw text of `key`'s value from the header's Python dict literal.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pattern_single = format!("'{key}':");
    let pattern_double = format!("\"{key}\":");
    let start = header
        .find(&pattern_single)
        .map(|i| i + pattern_single.len())
        .or_else(|| header.find(&pattern_double).map(|i| i + pattern_double.len()))?;
    let rest = header[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find(',').or_else(|| rest.find('}'))?
    };
    Some(rest[..end].trim())
}

impl NpyArray {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn values_f64(&self) -> Vec<f64> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect(),
            DType::F64 => d.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect(),
            DType::I64 => d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64).collect(),
            DType::I32 => d.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect(),
            DType::U8 | DType::Bool => d.iter().map(|&b| b as f64).collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as f64).collect(),
        }
    }

    /// The values as f32 in C (row-major) order, whatever the file's order.
    pub fn to_f32_c_order(&self) -> Vec<f32> {
        let flat: Vec<f32> = if self.dtype == DType::F32 {
            self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else {
            self.values_f64().into_iter().map(|v| v as f32).collect()
        };
        if self.fortran_order && self.shape.len() > 1 { fortran_to_c(&flat, &self.shape) } else { flat }
    }

    /// The values as u8 in C order (for image arrays); `None` unless the dtype is u8.
    pub fn to_u8_c_order(&self) -> Option<Vec<u8>> {
        if self.dtype != DType::U8 {
            return None;
        }
        Some(if self.fortran_order && self.shape.len() > 1 { fortran_to_c(&self.data, &self.shape) } else { self.data.clone() })
    }

    /// Integer values in C order; `None` if the dtype is a float type.
    pub fn to_i64_c_order(&self) -> Option<Vec<i64>> {
        let flat: Vec<i64> = match self.dtype {
            DType::F32 | DType::F64 => return None,
            _ => self.values_f64().into_iter().map(|v| v as i64).collect(),
        };
        Some(if self.fortran_order && self.shape.len() > 1 { fortran_to_c(&flat, &self.shape) } else { flat })
    }
}

/// Reorders a column-major array into row-major order.
fn fortran_to_c<T: Copy + Default>(flat: &[T], shape: &[usize]) -> Vec<T> {
    let n = flat.len();
    let mut out = vec![T::default(); n];
    if n == 0 {
        // A zero dimension beside a huge one: nothing to reorder (and no 2^62-step loop).
        return out;
    }
    // Strides of the Fortran layout.
    let mut f_strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        f_strides[k] = f_strides[k - 1] * shape[k - 1];
    }
    if shape.len() == 2 {
        let (rows, cols) = (shape[0], shape[1]);
        for c in 0..cols {
            let column = &flat[c * rows..(c + 1) * rows];
            for (r, &v) in column.iter().enumerate() {
                out[r * cols + c] = v;
            }
        }
        return out;
    }
    let mut index = vec![0usize; shape.len()];
    for slot in out.iter_mut() {
        let offset: usize = index.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        *slot = flat[offset];
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Writes a C-order little-endian `.npy` file (f32 or i64), atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    let mut bytes = npy_header("<f4", shape);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::io::write_atomic(path, &bytes)
}

pub fn write_npy_i64(path: &Path, shape: &[usize], values: &[i64]) -> Result<()> {
    let mut bytes = npy_header("<i8", shape);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::io::write_atomic(path, &bytes)
}

fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending with a newline.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_fortran_order() {
        let dir = std::env::temp_dir().join(format!("zl-npy-{}", std::process::id()));
        let path = dir.join("a.npy");
        write_npy_f32(&path, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
        let a = read_npy(&path).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.to_f32_c_order(), vec![1., 2., 3., 4., 5., 6.]);
        // The same matrix stored column-major.
        let mut bytes = npy_header("<f4", &[2, 3]);
        let at = bytes.windows(5).position(|w| w == b"False").unwrap();
        bytes[at..at + 5].copy_from_slice(b"True ");
        for v in [1f32, 4., 2., 5., 3., 6.] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let f = parse_npy(&bytes, &path).unwrap();
        assert!(f.fortran_order);
        assert_eq!(f.to_f32_c_order(), vec![1., 2., 3., 4., 5., 6.]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn rejects_bad_magic_and_truncation() {
        let p = Path::new("x.npy");
        let err = parse_npy(b"hello world, not numpy", p).err().unwrap().to_string();
        assert!(err.contains("x.npy") && err.contains("magic"), "{err}");
        let mut bytes = npy_header("<f4", &[4, 4]);
        bytes.extend_from_slice(&[0u8; 10]);
        let err = parse_npy(&bytes, p).err().unwrap().to_string();
        assert!(err.contains("truncated") && err.contains("64"), "{err}");
    }
}

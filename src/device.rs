//! Choosing the compute device at run time (`--device cpu|cuda|auto`).
//!
//! One binary serves both: the CPU build links only libtorch_cpu, and the CUDA backend
//! (libtorch_cuda.so, which needs the multi-GB CUDA wheels of `scripts/setup.sh --cuda`) is
//! loaded with dlopen when a GPU is asked for. Loading it registers libtorch's CUDA hooks, after
//! which `tch::Cuda` sees the GPUs, just as `import torch` does in Python.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when a GPU and the CUDA libraries are present, else the CPU.
    Auto,
}

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    option_env!("ZEROLABEL_LIBTORCH_LIB").map(PathBuf::from)
}

/// dlopen's libtorch_cuda.so (once); returns why it failed otherwise.
fn load_cuda_backend() -> std::result::Result<(), String> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let dir = libtorch_lib_dir().ok_or("the libtorch folder is unknown (set LIBTORCH)")?;
            let path = dir.join("libtorch_cuda.so");
            if !path.exists() {
                return Err(format!("{} does not exist (a CPU-only libtorch)", path.display()));
            }
            let c_path = std::ffi::CString::new(path.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
            // SAFETY: dlopen with a valid C string; the handle is kept for the process lifetime.
            let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a thread-local C string or null.
                let message = unsafe {
                    let e = libc::dlerror();
                    if e.is_null() { "unknown error".to_string() } else { std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned() }
                };
                return Err(format!("cannot load {}: {message} (run scripts/setup.sh --cuda)", path.display()));
            }
            Ok(())
        })
        .clone()
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<tch::Device> {
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda => {
                load_cuda_backend().map_err(Error::Device)?;
                if tch::Cuda::is_available() {
                    Ok(tch::Device::Cuda(0))
                } else {
                    Err(Error::Device("the CUDA backend loaded, but no CUDA GPU is visible".into()))
                }
            }
            DeviceChoice::Auto => {
                if load_cuda_backend().is_ok() && tch::Cuda::is_available() {
                    Ok(tch::Device::Cuda(0))
                } else {
                    Ok(tch::Device::Cpu)
                }
            }
        }
    }
}

pub fn describe(device: tch::Device) -> String {
    match device {
        tch::Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// Whether this processor has bfloat16 matrix units (Intel AMX-BF16, CPUID leaf 7 EDX bit 22),
/// where oneDNN runs bfloat16 convolutions several times faster than f32 ones.
pub fn cpu_has_bf16_matrix_units() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // Leaf 7 exists when the maximum leaf (leaf 0's EAX) reaches it.
        if std::arch::x86_64::__cpuid(0).eax >= 7 {
            return std::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 22) != 0;
        }
    }
    false
}

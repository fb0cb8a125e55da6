//! Adds an rpath to libtorch's `lib` folder so that `zerolabel` runs without LD_LIBRARY_PATH.
//! libtorch_cpu finds its two CUDA runtime libraries through the wheel's own
//! `$ORIGIN/../../nvidia/cu13/lib` rpath, so one entry is enough.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let lib = PathBuf::from(libtorch).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        println!("cargo:rustc-env=ZEROLABEL_LIBTORCH_LIB={}", lib.display());
    }
}

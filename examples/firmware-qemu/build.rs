//! Puts `memory.x` on the linker search path for cortex-m-rt's `link.x`.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // defmt's linker script, for the defmt demo only (the other bins do not use defmt).
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bin=defmt_demo=-Tdefmt.x");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

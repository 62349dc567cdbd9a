//! Link-time choices that depend on the system the binary is built for.
//!
//! Packed relative relocations (`-z pack-relative-relocs`, DT_RELR) when
//! the binary is built for the glibc it is built on and that glibc (2.36+)
//! applies them: a position-independent binary otherwise carries ~40 000
//! relative relocations of 24 bytes each (435 KB of `.rela.dyn`), which the
//! loader reads at every start, so they stay in each process's memory; packed,
//! they take 9 KB. An older glibc would ignore DT_RELR and start a binary
//! whose pointers were never relocated, so the flag is left out there (and
//! in cross builds, whose target glibc is not known here). The static musl
//! build (`scripts/build-static.sh`) is not concerned.

use std::process::Command;

/// The first glibc whose loader applies DT_RELR.
const RELR_GLIBC: (u32, u32) = (2, 36);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let gnu_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if gnu_linux && var("HOST") == var("TARGET") && glibc().is_some_and(|v| v >= RELR_GLIBC) {
        println!("cargo:rustc-link-arg=-Wl,-z,pack-relative-relocs");
    }
}

/// The build system's glibc version, from `getconf GNU_LIBC_VERSION`
/// ("glibc 2.36"); `None` when it cannot be told.
fn glibc() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.trim().strip_prefix("glibc ")?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

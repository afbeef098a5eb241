//! Example guests by name: the crates in the repository's `guests/` are built for
//! `wasm32-unknown-unknown` on first use (once per process) and the module is read. `sim`
//! uses it for scenarios; the kernel's tests and benchmarks include this same file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TARGET: &str = "wasm32-unknown-unknown";

/// The repository root: the directory holding `guests/`, which is the crate's own directory
/// or its parent (this file is also compiled into the kernel's tests and benchmarks).
fn repository() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("guests/Cargo.toml").exists() {
        return here.to_owned();
    }
    here.join("..")
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
}

fn build() -> Result<PathBuf, String> {
    if !target_installed() {
        return Err(format!(
            "example guests need the {TARGET} target; install it with: rustup target add {TARGET}"
        ));
    }
    let target_dir = repository().join("target/guests");
    let out = Command::new(env!("CARGO"))
        .current_dir(repository().join("guests"))
        .args(["build", "--release", "--quiet", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cannot run cargo to build the example guests: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the example guests failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(target_dir.join(TARGET).join("release"))
}

/// The module of example guest `name`.
///
/// # Errors
/// The guests cannot be built, or there is no guest of that name.
pub fn guest(name: &str) -> Result<Vec<u8>, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(build).as_ref().map_err(Clone::clone)?;
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|_| {
        format!(
            "there is no example guest `{name}` (the crates in {})",
            repository().join("guests").display()
        )
    })
}

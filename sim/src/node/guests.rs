//! Example guests by name: the crates in the repository's `guests/` are built for
//! `wasm32-unknown-unknown` on first use (once per process) and the module is read; the WASI
//! guests (`WASI_GUESTS`) are built the same way for `wasm32-wasip1` (`wasi_guest`). `sim`
//! uses it for scenarios; the kernel's tests and benchmarks include this same file.
//!
//! A missing target is installed here, with `rustup target add` and a one-line notice on
//! stderr, so the README's commands work on a machine that has only the stable toolchain
//! (rustup 1.29 does not add a `rust-toolchain.toml`'s targets to a toolchain that is already
//! installed). Install and build run under a lock file in `target/guests`, so test binaries
//! and `sim` processes started side by side neither install twice nor race.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

const TARGET: &str = "wasm32-unknown-unknown";
/// The target of the WASI guests.
const WASI_TARGET: &str = "wasm32-wasip1";
/// The guest crates built for `WASI_TARGET` (not default members of the guest workspace).
const WASI_GUESTS: &[&str] = &["wasi-probe"];

/// Why an example guest is not available.
#[derive(Debug, Clone)]
pub enum GuestError {
    /// The target is missing and `rustup` could not be run to install it.
    NoRustup {
        /// The target.
        target: &'static str,
        /// Why `rustup` did not start.
        source: Arc<io::Error>,
    },
    /// `rustup target add` ran and failed (offline, say).
    InstallFailed {
        /// The target.
        target: &'static str,
        /// What rustup printed on stderr.
        stderr: String,
    },
    /// `cargo` could not be run, or the lock file could not be taken.
    Io {
        /// What was being done.
        doing: &'static str,
        /// The error.
        source: Arc<io::Error>,
    },
    /// The guest workspace did not build.
    BuildFailed {
        /// What cargo printed on stderr.
        stderr: String,
    },
    /// No guest crate of that name.
    NoSuchGuest {
        /// The name asked for.
        name: String,
        /// Where the guest crates are.
        dir: PathBuf,
    },
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRustup { target, source } => write!(
                f,
                "example guests need the {target} target and rustup could not be run to install \
                 it ({source}); install it with: rustup target add {target}"
            ),
            Self::InstallFailed { target, stderr } => write!(
                f,
                "example guests need the {target} target and `rustup target add {target}` \
                 failed (offline?):\n{}",
                stderr.trim_end()
            ),
            Self::Io { doing, source } => write!(f, "{doing}: {source}"),
            Self::BuildFailed { stderr } => {
                write!(f, "building the example guests failed:\n{stderr}")
            }
            Self::NoSuchGuest { name, dir } => write!(
                f,
                "there is no example guest `{name}` (the crates in {})",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for GuestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NoRustup { source, .. } | Self::Io { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

/// The repository root: the directory holding `guests/`, which is the crate's own directory
/// or its parent (this file is also compiled into the kernel's tests and benchmarks).
fn repository() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("guests/Cargo.toml").exists() {
        return here.to_owned();
    }
    here.join("..")
}

fn target_installed(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .exists()
}

/// Installs `target` into the toolchain this build runs on.
fn install_target(target: &'static str) -> Result<(), GuestError> {
    eprintln!(
        "note: installing the {target} target for the example guests \
         (rustup target add {target}); once per toolchain"
    );
    let mut rustup = Command::new("rustup");
    rustup
        .current_dir(repository())
        .args(["target", "add", target]);
    // The toolchain cargo runs under (set by rustup's proxies), not rustup's default.
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let out = rustup.output().map_err(|e| GuestError::NoRustup {
        target,
        source: Arc::new(e),
    })?;
    if !out.status.success() || !target_installed(target) {
        return Err(GuestError::InstallFailed {
            target,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Installs `target` into the toolchain this build runs on if it lacks it.
///
/// # Errors
/// rustup could not be run, or failed.
#[allow(
    dead_code,
    reason = "included by the kernel's tests and benchmarks too, which build no packages"
)]
pub fn ensure_target(target: &'static str) -> Result<(), GuestError> {
    if !target_installed(target) {
        install_target(target)?;
    }
    Ok(())
}

/// Builds the default guests for `TARGET`, or the WASI guests for `WASI_TARGET`.
fn build(target: &'static str) -> Result<PathBuf, GuestError> {
    let target_dir = repository().join("target/guests");
    let io = |doing| {
        move |e| GuestError::Io {
            doing,
            source: Arc::new(e),
        }
    };
    std::fs::create_dir_all(&target_dir).map_err(io("cannot create target/guests"))?;
    let lock = File::create(target_dir.join(".build-lock"))
        .map_err(io("cannot create target/guests/.build-lock"))?;
    lock.lock()
        .map_err(io("cannot lock target/guests/.build-lock"))?;
    if !target_installed(target) {
        install_target(target)?;
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--release", "--quiet", "--target", target]);
    if target == WASI_TARGET {
        for name in WASI_GUESTS {
            cargo.args(["--package", name]);
        }
    }
    let out = cargo
        .current_dir(repository().join("guests"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(io("cannot run cargo to build the example guests"))?;
    if !out.status.success() {
        return Err(GuestError::BuildFailed {
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    // The lock is released when `lock` drops, after the modules are written.
    Ok(target_dir.join(target).join("release"))
}

/// The module of example guest `name`.
///
/// # Errors
/// The guests cannot be built, or there is no guest of that name.
pub fn guest(name: &str) -> Result<Vec<u8>, GuestError> {
    static BUILT: OnceLock<Result<PathBuf, GuestError>> = OnceLock::new();
    built(&BUILT, TARGET, name)
}

/// The module of WASI guest `name` (one of `WASI_GUESTS`, built for `wasm32-wasip1`).
///
/// # Errors
/// The guests cannot be built, or there is no WASI guest of that name.
#[allow(
    dead_code,
    reason = "included by the kernel's benchmarks too, which need no WASI guest"
)]
pub fn wasi_guest(name: &str) -> Result<Vec<u8>, GuestError> {
    static BUILT: OnceLock<Result<PathBuf, GuestError>> = OnceLock::new();
    built(&BUILT, WASI_TARGET, name)
}

fn built(
    once: &OnceLock<Result<PathBuf, GuestError>>,
    target: &'static str,
    name: &str,
) -> Result<Vec<u8>, GuestError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || !name.chars().all(plain) {
        return Err(GuestError::NoSuchGuest {
            name: name.to_owned(),
            dir: repository().join("guests"),
        });
    }
    let dir = once
        .get_or_init(|| build(target))
        .as_ref()
        .map_err(Clone::clone)?;
    // Cargo names a cdylib's module after its crate, with `_` for `-`.
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).map_err(|_| GuestError::NoSuchGuest {
        name: name.to_owned(),
        dir: repository().join("guests"),
    })
}

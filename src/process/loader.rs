//! `ProcessLoader`: turns the code blob of `InitializeProcess` into a process runtime.
//!
//! The wasm loader (wasmi) comes with the wasm runtime; `NativeLoader` maps code blobs to
//! registered Rust constructors, for runtime modules and tests.

use crate::process::Process;
use crate::types::ProcessId;
use std::collections::BTreeMap;

/// Builds process runtimes from code.
pub trait ProcessLoader {
    /// Validates `code` and builds a runtime for `process`. Called by `InitializeProcess`
    /// (before anything is registered, so invalid code is an error, not a zombie: W9) and by
    /// restarts.
    ///
    /// # Errors
    /// A lowercase sentence saying why the code cannot run.
    fn load(&mut self, process: &ProcessId, code: &[u8]) -> Result<Box<dyn Process>, String>;
}

type Constructor = Box<dyn Fn() -> Box<dyn Process>>;

/// Native processes by code blob: the blob `b"echo"` builds whatever was registered as `echo`.
#[derive(Default)]
pub struct NativeLoader {
    constructors: BTreeMap<Vec<u8>, Constructor>,
}

impl NativeLoader {
    /// An empty loader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `constructor` for the code blob `code`.
    #[must_use]
    pub fn with(
        mut self,
        code: &str,
        constructor: impl Fn() -> Box<dyn Process> + 'static,
    ) -> Self {
        self.constructors
            .insert(code.as_bytes().to_vec(), Box::new(constructor));
        self
    }
}

impl ProcessLoader for NativeLoader {
    fn load(&mut self, _process: &ProcessId, code: &[u8]) -> Result<Box<dyn Process>, String> {
        match self.constructors.get(code) {
            Some(constructor) => Ok(constructor()),
            None => {
                let shown = String::from_utf8_lossy(&code[..code.len().min(64)]).into_owned();
                Err(format!(
                    "no native process is registered for code {shown:?} ({} bytes)",
                    code.len()
                ))
            }
        }
    }
}

//! What a wasm process may take of the host: its linear memory and table elements (per
//! process), and all processes' memory and tables together (per kernel, a budget shared by
//! the processes one loader made). A module that declares more than it may have fails at
//! `InitializeProcess`; growth past a bound traps; either way with the reason, which
//! [`Limits::denied`] keeps for the error text (wasmi's own says only "denied").
//!
//! A 1.4 KB module declaring a table of 10^9 funcrefs used to cost 3.9 GB, and 100 modules
//! declaring 64 MiB each 6.4 GB with no kernel-wide bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmi_core::LimiterError;

/// Host bytes one table element is counted as.
const ELEMENT_LEN: u64 = 16;

/// The kernel-wide budget: bytes of linear memory and tables every live process holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Budget {
    used: Arc<AtomicU64>,
}

impl Budget {
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// One process's limits and what it holds of the kernel's budget.
#[derive(Debug)]
pub(crate) struct Limits {
    memory_max: usize,
    table_elements_max: usize,
    total_max: u64,
    budget: Budget,
    /// Bytes this process holds of the budget.
    held: u64,
    /// Why the last growth was refused.
    pub(crate) denied: Option<String>,
}

impl Limits {
    pub(crate) fn new(config: &super::WasmConfig, budget: Budget) -> Self {
        Self {
            memory_max: config.memory_max,
            table_elements_max: config.table_elements_max,
            total_max: config.total_memory_max,
            budget,
            held: 0,
            denied: None,
        }
    }

    /// Takes `bytes` more of the kernel's budget, or says why not.
    fn take(&mut self, bytes: u64, what: &str) -> Result<bool, LimiterError> {
        let used = self.budget.used.fetch_add(bytes, Ordering::Relaxed);
        if used.saturating_add(bytes) > self.total_max {
            self.budget.used.fetch_sub(bytes, Ordering::Relaxed);
            return self.deny(format!(
                "{what}: the kernel's wasm processes would hold more than {} bytes \
                 (WasmConfig::total_memory_max; {used} in use)",
                self.total_max
            ));
        }
        self.held += bytes;
        Ok(true)
    }

    fn deny(&mut self, reason: String) -> Result<bool, LimiterError> {
        self.denied = Some(reason);
        Err(LimiterError::ResourceLimiterDeniedAllocation)
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        // The process is gone: its memory and tables go back to the budget.
        let before = self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
        debug_assert!(
            before >= self.held,
            "a process gives back only what it took"
        );
    }
}

/// Modules a process may have: its own and a composition's exporters.
const PARTS: usize = 1 + super::compose::PARTS_MAX;

impl wasmi::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired > self.memory_max {
            return self.deny(format!(
                "linear memory of {desired} bytes is over the cap of {} bytes \
                 (WasmConfig::memory_max)",
                self.memory_max
            ));
        }
        self.take(desired.saturating_sub(current) as u64, "linear memory")
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired > self.table_elements_max {
            return self.deny(format!(
                "a table of {desired} elements is over the cap of {} \
                 (WasmConfig::table_elements_max)",
                self.table_elements_max
            ));
        }
        let bytes = (desired.saturating_sub(current) as u64).saturating_mul(ELEMENT_LEN);
        self.take(bytes, "table")
    }

    // A composed process has an instance, a memory and its tables a module (`compose.rs`).
    fn instances(&self) -> usize {
        PARTS
    }

    fn tables(&self) -> usize {
        4 * PARTS
    }

    fn memories(&self) -> usize {
        PARTS
    }
}

//! Capability provenance: the oracle that every capability a process holds came to it by its
//! issuer's own rules. A forged capability breaks it whatever path it took (a vfs path that
//! injected a key into drive params, a remote node claiming our node as issuer).
//!
//! Taken at the start of a run (`Provenance::of`), it accepts at any later point, for a
//! capability issued on our node and held by process `p`:
//! - one `p` held at the start, or one the run let move (`Provenance::allow`: a capability a
//!   test hands another node, which may send it back signed);
//! - one `p` issued itself;
//! - a vfs drive capability (`{"kind":"read"|"write","drive":D}`) for a drive of `p`'s own
//!   package with a valid name: what `CreateDrive` gives its creator; any drive's when `p`
//!   held the vfs's root capability at the start.
//!
//! Capabilities issued by another node grant nothing on ours and are not judged.

use hyperkernel::process::vfs::{DriveCap, is_drive_name, root_params, vfs_id};
use hyperkernel::{CapKey, Capability, Kernel, ProcessId};
use std::collections::{BTreeMap, BTreeSet};

/// The canonical keys of `caps` (a kernel's capabilities are canonical: none is dropped).
fn keys(caps: Vec<Capability>) -> BTreeSet<CapKey> {
    let count = caps.len();
    let keys: BTreeSet<CapKey> = caps
        .iter()
        .filter_map(|cap| CapKey::try_from_capability(cap).ok())
        .collect();
    debug_assert!(
        keys.len() == count,
        "held capabilities are canonical and distinct"
    );
    keys
}

/// What every process held at the start of a run (module docs).
pub struct Provenance {
    our: String,
    initial: BTreeMap<ProcessId, BTreeSet<CapKey>>,
    allowed: BTreeSet<CapKey>,
}

impl Provenance {
    /// The holdings of `kernel` now, as the run's start.
    pub fn of(kernel: &Kernel) -> Self {
        let mut initial = BTreeMap::new();
        for process in kernel.process_ids() {
            initial.insert(process.clone(), keys(kernel.capabilities_of(&process)));
        }
        assert!(!initial.is_empty(), "a kernel holds at least itself");
        Self {
            our: kernel.our().to_owned(),
            initial,
            allowed: BTreeSet::new(),
        }
    }

    /// Lets `cap` move to any process from now on (the run gave it away legitimately).
    pub fn allow(&mut self, cap: &Capability) {
        if let Ok(key) = CapKey::try_from_capability(cap) {
            self.allowed.insert(key);
        }
        debug_assert!(
            !self.allowed.is_empty(),
            "a capability with JSON params is allowed"
        );
    }

    /// Whether every capability held in `kernel` now came by its issuer's rules.
    ///
    /// # Errors
    /// The first one that did not: who holds it, and what it is.
    pub fn check(&self, kernel: &Kernel) -> Result<(), String> {
        let mut judged = 0usize;
        for process in kernel.process_ids() {
            for cap in kernel.capabilities_of(&process) {
                if *cap.issuer.node != *self.our {
                    continue;
                }
                judged += 1;
                if !self.is_earned(&process, &cap) {
                    return Err(format!(
                        "{process} holds {} {} that no rule gave it",
                        cap.issuer, cap.params
                    ));
                }
            }
        }
        debug_assert!(
            judged > 0 || kernel.process_ids().is_empty(),
            "something was judged"
        );
        Ok(())
    }

    fn is_earned(&self, process: &ProcessId, cap: &Capability) -> bool {
        let Ok(key) = CapKey::try_from_capability(cap) else {
            return false;
        };
        let held_before = self
            .initial
            .get(process)
            .is_some_and(|caps| caps.contains(&key));
        if held_before || self.allowed.contains(&key) || cap.issuer.process == *process {
            return true;
        }
        cap.issuer.process == vfs_id() && self.is_own_drive_cap(process, cap)
    }

    /// A drive capability `CreateDrive` gives `process`: its own package's drive, or any
    /// drive if it held the root capability at the start.
    fn is_own_drive_cap(&self, process: &ProcessId, cap: &Capability) -> bool {
        let vfs = hyperkernel::Address::new(&self.our, vfs_id());
        let root = CapKey::from_params(vfs, &root_params());
        let had_root = self
            .initial
            .get(process)
            .is_some_and(|caps| caps.contains(&root));
        let own = format!("/{}:{}/", process.package(), process.publisher());
        let Ok(params) = serde_json::from_str::<serde_json::Value>(&cap.params) else {
            return false;
        };
        let Some(drive) = params["drive"].as_str() else {
            return false;
        };
        let name = drive.rsplit('/').next().unwrap_or_default();
        let shaped = [DriveCap::Read, DriveCap::Write]
            .iter()
            .any(|kind| kind.params(drive) == params);
        let ours = drive.starts_with(&own) && drive[own.len()..] == *name;
        shaped && is_drive_name(name) && (ours || had_root)
    }
}

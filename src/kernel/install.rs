//! Installing a package the way the reference's boot does (spec §6.1): its files go into the
//! vfs under `/package:publisher/pkg/`, each manifest entry becomes a process with the
//! capabilities it requests (made "out of thin air", as the reference makes them), messaging
//! to itself, the network capability if it asks, and the vfs read and write capabilities of
//! its package's drive; then the grants of every entry are given (to the real grantee, not the
//! granter as the reference's reverse index records them: W11). Every process is initialized
//! before any runs, so the first ones find the later ones; all of it is one commit.

use super::Kernel;
use super::lifecycle::NewProcessError;
use super::persist::KernelFailure;
use super::state::ProcessEntry;
use crate::caps::CapKey;
use crate::package::{CapabilitySpec, Package};
use crate::process::Process;
use crate::process::vfs::DriveCap;
use crate::storage::Table;
use crate::types::{Capability, ProcessId};
use std::fmt;
use std::sync::Arc;

/// A process of a package, loaded and not yet in the table: its id, runtime and code.
type Loaded = (ProcessId, Box<dyn Process>, Arc<[u8]>);

/// Why a package was not installed; nothing of it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// A process of the package exists already.
    Exists(ProcessId),
    /// A manifest entry names no valid process id.
    BadName {
        /// The entry's process name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A module does not load.
    Load {
        /// Its process.
        process: ProcessId,
        /// Its module's path in the package (`process_wasm_path`).
        module: String,
        /// Why.
        reason: String,
    },
    /// The commit failed: the kernel has stopped.
    Failed(KernelFailure),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exists(process) => write!(f, "{process} exists already"),
            Self::BadName { name, reason } => write!(f, "process name {name}: {reason}"),
            Self::Load {
                process,
                module,
                reason,
            } => {
                let module = module.trim_start_matches('/');
                write!(f, "{process} does not load (pkg/{module}): {reason}")
            }
            Self::Failed(failure) => write!(f, "the kernel stopped: {failure}"),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

impl Kernel {
    /// Installs `package` (module docs); with `run`, starts its processes in manifest order
    /// once all are initialized. Returns their ids in manifest order.
    ///
    /// # Errors
    /// A process of the package exists, a module does not load (nothing is installed), or the
    /// commit failed (the kernel has stopped).
    pub(crate) fn install_package(
        &mut self,
        package: &Package,
        run: bool,
    ) -> Result<Vec<ProcessId>, InstallError> {
        // Everything that can fail is checked before anything changes.
        let mut loaded: Vec<Loaded> = Vec::new();
        for entry in &package.entries {
            let id = package
                .process_id(entry)
                .map_err(|reason| InstallError::BadName {
                    name: entry.process_name.clone(),
                    reason,
                })?;
            match self.check_new_process_id(&id) {
                Ok(()) => {}
                Err(NewProcessError::Exists(id)) => return Err(InstallError::Exists(id)),
                Err(error) => {
                    return Err(InstallError::BadName {
                        name: entry.process_name.clone(),
                        reason: error.to_string(),
                    });
                }
            }
            let Some(code) = package.module(entry) else {
                kernel_bug!("Package::read checked that {id}'s module exists");
            };
            let runtime = self
                .loader
                .load(&id, code)
                .map_err(|reason| InstallError::Load {
                    process: id.clone(),
                    module: entry.process_wasm_path.clone(),
                    reason,
                })?;
            loaded.push((id, runtime, Arc::from(code)));
        }
        for (path, bytes) in &package.files {
            self.write(Table::Vfs, package.vfs_path(path).as_bytes(), Some(bytes));
        }
        let drive = format!("/{}/pkg", package.id);
        self.write(Table::Vfs, format!("{drive}/").as_bytes(), Some(&[]));
        let ids: Vec<ProcessId> = loaded.iter().map(|(id, _, _)| id.clone()).collect();
        for ((id, runtime, code), entry) in loaded.into_iter().zip(&package.entries) {
            let caps = self.entry_capabilities(&id, entry, &drive);
            let handle = package.vfs_path(&entry.process_wasm_path);
            let mut process = ProcessEntry::new(handle, entry.on_exit.clone(), entry.public, code);
            process.wit_version = package.wit_version;
            self.insert_entry(&id, process, Some(runtime), &caps);
        }
        for (granter, entry) in ids.iter().zip(&package.entries) {
            for spec in &entry.grant_capabilities {
                self.grant_from(granter, spec);
            }
        }
        debug_assert!(
            ids.iter().all(|id| self.table.contains_key(id)),
            "all installed"
        );
        if run {
            for id in &ids {
                self.start(id);
            }
        }
        self.commit_step().map_err(InstallError::Failed)?;
        Ok(ids)
    }

    /// What a manifest entry's process starts with (module docs).
    fn entry_capabilities(
        &self,
        id: &ProcessId,
        entry: &crate::package::ManifestEntry,
        drive: &str,
    ) -> Vec<Capability> {
        let mut caps: Vec<Capability> = entry
            .request_capabilities
            .iter()
            .map(|spec| self.capability_of(spec))
            .collect();
        caps.push(Capability::messaging(self.address_of(id)));
        if entry.request_networking {
            caps.push(Capability::network(&self.our));
        }
        let vfs = self.address_of(&crate::process::vfs::vfs_id());
        for kind in [DriveCap::Read, DriveCap::Write] {
            caps.push(CapKey::from_params(vfs.clone(), &kind.params(drive)).to_capability());
        }
        debug_assert!(caps.len() >= 3, "itself and its drive at least");
        caps
    }

    /// The capability a manifest's spec names, issued on our node.
    fn capability_of(&self, spec: &CapabilitySpec) -> Capability {
        match spec {
            CapabilitySpec::Messaging(process) => Capability::messaging(self.address_of(process)),
            CapabilitySpec::Params { process, params } => {
                Capability::new(self.address_of(process), params.clone())
            }
        }
    }

    /// One grant of `granter`'s manifest entry: `Messaging(p)` gives `p` messaging to the
    /// granter; `Params {process: p, params}` gives `p` the granter's capability with params.
    /// A grantee that does not exist gets nothing.
    fn grant_from(&mut self, granter: &ProcessId, spec: &CapabilitySpec) {
        let issuer = self.address_of(granter);
        let (grantee, cap) = match spec {
            CapabilitySpec::Messaging(grantee) => (grantee, Capability::messaging(issuer)),
            CapabilitySpec::Params { process, params } => {
                (process, Capability::new(issuer, params.clone()))
            }
        };
        if !self.table.contains_key(grantee) {
            return;
        }
        if let Ok(key) = CapKey::try_from_capability(&cap)
            && self.caps.insert(grantee, key.clone())
        {
            self.trace_caps_changed(grantee, vec![key.to_capability()], Vec::new());
        }
    }
}

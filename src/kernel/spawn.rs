//! `spawn` (spec §4.8): a process starts a child from a wasm file in its package's drive.
//!
//! The reference reads the file through the vfs service, then sends `InitializeProcess`,
//! grants, `RunProcess` and two `Add`s from a fake kernel source, ignoring the replies (W8:
//! a taken name returns `Ok` with the existing process, which gets a stray `run`). Here the
//! same steps run synchronously inside the syscall, so the child is running when `spawn`
//! returns, and a taken name is `Err(name-taken)` (W8 fixed; the wire format is unchanged).
//!
//! Files live in the store's vfs table under their path, the namespace the vfs service will
//! serve; [`Kernel::vfs_write`] puts them there. As the vfs grants same-package reads, a process may
//! spawn only from `/{package}:{publisher}/…`.

use super::Kernel;
use super::host::SyscallError;
use super::lifecycle::NewProcessError;
use super::persist::KernelFailure;
use super::state::ProcessEntry;
use crate::caps::CapKey;
use crate::storage::Table;
use crate::types::{Capability, OnExit, ProcessId};
use std::sync::Arc;

/// Why `spawn` refused, as the WIT `spawn-error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// A process with that id exists (or waits to restart).
    NameTaken,
    /// No readable, loadable wasm file at that path in the parent's drive.
    NoFileAtPath,
}

/// What the parent asks for.
#[derive(Clone, Debug)]
pub struct SpawnRequest {
    /// The child's process name; a fresh number when `None`.
    pub name: Option<String>,
    /// The wasm file, in the parent's package drive.
    pub wasm_path: String,
    /// The child's on-exit.
    pub on_exit: OnExit,
    /// Capabilities for the child; only those the parent holds or issues are given.
    pub request_capabilities: Vec<Capability>,
    /// Capabilities issued by the child, `(grantee, params)`.
    pub grant_capabilities: Vec<(ProcessId, String)>,
    /// Whether anyone may message the child.
    pub public: bool,
}

impl Kernel {
    /// Writes a file into the vfs table (what `spawn` reads), committed at once when no step
    /// is under way.
    ///
    /// # Errors
    /// The commit failed: the kernel has stopped.
    pub(crate) fn vfs_write(&mut self, path: &str, bytes: &[u8]) -> Result<(), KernelFailure> {
        self.write(Table::Vfs, path.as_bytes(), Some(bytes));
        let committed = self.commit_step();
        debug_assert!(
            committed.is_err() || self.durable.writes.is_empty(),
            "a committed write set was kept"
        );
        committed
    }

    /// The file at `path` in `parent`'s drive. `Err` is a read failure (the kernel stopped).
    fn spawn_code(&mut self, parent: &ProcessId, path: &str) -> Result<Option<Vec<u8>>, ()> {
        // The reference reads the path through its vfs, which takes it with or without the
        // leading slash (kit's file-transfer template spawns `pkg:publisher/pkg/x.wasm`).
        let path = match path.strip_prefix('/') {
            Some(_) => std::borrow::Cow::Borrowed(path),
            None => std::borrow::Cow::Owned(format!("/{path}")),
        };
        let drive = format!("/{}:{}/", parent.package(), parent.publisher());
        if !path.starts_with(&drive) || path.contains("/../") || path.ends_with("/..") {
            return Ok(None);
        }
        debug_assert!(path.starts_with('/'), "a vfs key starts with a slash");
        self.read(Table::Vfs, path.as_bytes())
    }

    fn spawn_name(
        &mut self,
        parent: &ProcessId,
        name: Option<String>,
    ) -> Result<ProcessId, SyscallError> {
        let name = name.unwrap_or_else(|| self.entropy.next_name().to_string());
        let child = ProcessId::new(&name, parent.package(), parent.publisher())
            .map_err(|e| SyscallError::InvalidName(format!("{name}: {e}")))?;
        child
            .check()
            .map_err(|e| SyscallError::InvalidName(format!("{name}: {e}")))?;
        Ok(child)
    }

    /// `spawn`. `Err` is a guest error (an invalid name: a trap, as in the reference);
    /// `Ok(Err(_))` is the WIT `spawn-error`.
    pub(crate) fn sys_spawn(
        &mut self,
        parent: &ProcessId,
        request: SpawnRequest,
    ) -> Result<Result<ProcessId, SpawnError>, SyscallError> {
        let child = self.spawn_name(parent, request.name)?;
        match self.check_new_process_id(&child) {
            Ok(()) => {}
            Err(NewProcessError::Exists(_)) => return Ok(Err(SpawnError::NameTaken)),
            // A child of a process in distro:sys: the rule holds for spawned ones too.
            Err(error) => return Err(SyscallError::InvalidName(error.to_string())),
        }
        let Some(code) = self
            .spawn_code(parent, &request.wasm_path)
            .map_err(|()| SyscallError::StorageFailed)?
        else {
            return Ok(Err(SpawnError::NoFileAtPath));
        };
        let Ok(runtime) = self.loader.load(&child, &code) else {
            return Ok(Err(SpawnError::NoFileAtPath));
        };
        let signed: Vec<_> = request
            .request_capabilities
            .into_iter()
            .map(|c| (c, Vec::new()))
            .collect();
        let mut caps: Vec<Capability> = self
            .caps
            .filter_attached(parent, &signed)
            .kept
            .into_iter()
            .map(|(cap, _)| cap)
            .collect();
        caps.push(Capability::messaging(self.address_of(&child)));
        caps.push(Capability::messaging(self.address_of(parent)));
        let wit_version = self.table.get(parent).and_then(|e| e.wit_version);
        let mut entry = ProcessEntry::new(
            request.wasm_path,
            request.on_exit,
            request.public,
            Arc::from(code),
        );
        entry.wit_version = wit_version;
        self.insert_entry(&child, entry, Some(runtime), &caps);
        let issuer = self.address_of(&child);
        for (grantee, params) in request.grant_capabilities {
            let cap = Capability {
                issuer: issuer.clone(),
                params,
            };
            if let Ok(key) = CapKey::try_from_capability(&cap)
                && self.table.contains_key(&grantee)
                && self.caps.insert(&grantee, key.clone())
            {
                self.trace_caps_changed(&grantee, vec![key.to_capability()], Vec::new());
            }
        }
        let to_child = CapKey::try_from_capability(&Capability::messaging(self.address_of(&child)));
        if let Ok(key) = to_child
            && self.caps.insert(parent, key.clone())
        {
            self.trace_caps_changed(parent, vec![key.to_capability()], Vec::new());
        }
        self.start(&child);
        Ok(Ok(child))
    }
}

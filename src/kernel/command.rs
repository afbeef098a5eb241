//! The command handler: one function per `KernelCommand` (spec §2).
//!
//! Reply contract: the reference's replies are kept (InitializeProcess, RunProcess and Debug
//! always answer; KillProcess answers when a response is expected). Everything else answers
//! only a requester that set `expects_response`: the W6 fix. Failures are `CommandFailed`
//! trace events; their reason travels in the response metadata (reference error variants) or
//! as `KernelResponse::Error`.

use super::Kernel;
use super::lifecycle::NewProcessError;
use super::state::ProcessEntry;
use crate::caps::CapKey;
use crate::trace::{DropReason, Event};
use crate::types::{
    Capability, KernelMessage, LazyLoadBlob, Message, OnExit, ProcessId, Request, Response,
};
use crate::wire::{
    CommandError, CommandErrorKind, KernelCommand, KernelPrint, KernelPrintResponse,
    KernelResponse, UserspacePersistedProcess,
};
use std::sync::Arc;

/// Metadata of a kill that keeps the capabilities the process issued.
pub const NO_REVOKE: &str = "no-revoke";

/// The fields of `InitializeProcess`.
struct Initialize {
    id: ProcessId,
    wasm_bytes_handle: String,
    wit_version: Option<u32>,
    on_exit: OnExit,
    initial_capabilities: Vec<Capability>,
    public: bool,
}

impl Kernel {
    /// Handles a message that passed the checks and targets `our@kernel:distro:sys`.
    pub(crate) fn handle_command(&mut self, message: Box<KernelMessage>) {
        let Message::Request(request) = &message.message else {
            return self.drop_message(message, DropReason::ResponseToKernel);
        };
        let command = match serde_json::from_slice::<KernelCommand>(&request.body) {
            Ok(command) => command,
            Err(error) => {
                let error =
                    CommandError::new("unknown", CommandErrorKind::Unparseable, error.to_string());
                return self.fail_command(&message, error, None);
            }
        };
        let event = Event::Command {
            id: message.id,
            source: message.source.clone(),
            command: command.name().into(),
        };
        self.trace.push(self.clock.now(), event);
        match command {
            KernelCommand::Booted => {
                self.command_booted();
                self.reply_if_expected(&message, &KernelResponse::Booted);
            }
            KernelCommand::InitializeProcess {
                id,
                wasm_bytes_handle,
                wit_version,
                on_exit,
                initial_capabilities,
                public,
            } => {
                let init = Initialize {
                    id,
                    wasm_bytes_handle,
                    wit_version,
                    on_exit,
                    initial_capabilities,
                    public,
                };
                self.command_initialize(&message, init);
            }
            KernelCommand::GrantCapabilities {
                target,
                capabilities,
            } => self.command_grant(&message, &target, &capabilities),
            KernelCommand::DropCapabilities {
                target,
                capabilities,
            } => self.command_drop(&message, &target, &capabilities),
            KernelCommand::SetOnExit { target, on_exit } => {
                self.command_set_on_exit(&message, &target, on_exit)
            }
            KernelCommand::RunProcess(id) => self.command_run(&message, &id),
            KernelCommand::KillProcess(id) => self.command_kill(&message, request, &id),
            KernelCommand::Shutdown => self.shutdown(),
            KernelCommand::Debug(print) => self.command_debug(&message, &print),
        }
    }

    /// Sends `response` for command `message` (id, rsvp-or-source) from the kernel.
    fn reply(
        &mut self,
        message: &KernelMessage,
        response: &KernelResponse,
        metadata: Option<String>,
    ) {
        let target = message
            .rsvp
            .clone()
            .unwrap_or_else(|| message.source.clone());
        if target == self.our_kernel {
            // A command the kernel sent itself (a harness's setup): it never awaits answers.
            return;
        }
        let body = serde_json::to_string(response).unwrap_or_default();
        self.trace.push(
            self.clock.now(),
            Event::Replied {
                id: message.id,
                target: target.clone(),
                body: body.clone(),
            },
        );
        let mut reply = Response::new(body.into_bytes());
        reply.metadata = metadata;
        let reply = KernelMessage {
            id: message.id,
            source: self.our_kernel.clone(),
            target,
            rsvp: None,
            message: Message::Response((reply, None)),
            lazy_load_blob: None,
        };
        self.enqueue_inbox(Box::new(reply));
    }

    /// Replies only if the requester expects a response (our additive replies).
    fn reply_if_expected(&mut self, message: &KernelMessage, response: &KernelResponse) {
        if message.message.expects_response().is_some() {
            self.reply(message, response, None);
        }
    }

    /// Records a failed command and answers: with the reference's error variant and the reason
    /// in metadata when there is one, else with `Error` if a response is expected.
    fn fail_command(
        &mut self,
        message: &KernelMessage,
        error: CommandError,
        reference: Option<KernelResponse>,
    ) {
        self.trace.push(
            self.clock.now(),
            Event::CommandFailed {
                id: message.id,
                error: error.clone(),
            },
        );
        match reference {
            Some(response) => {
                let metadata = serde_json::to_string(&error).ok();
                self.reply(message, &response, metadata);
            }
            None => self.reply_if_expected(message, &KernelResponse::Error(error)),
        }
    }

    fn command_booted(&mut self) {
        let preboot: Vec<ProcessId> = self
            .table
            .iter()
            .filter(|(_, entry)| entry.state == super::RunState::PreBoot)
            .map(|(id, _)| id.clone())
            .collect();
        for process in preboot {
            self.start(&process);
        }
    }

    fn command_initialize(&mut self, message: &KernelMessage, init: Initialize) {
        const NAME: &str = "InitializeProcess";
        let reference = Some(KernelResponse::InitializeProcessError);
        let fail = |kind, text: String| CommandError::new(NAME, kind, text);
        let Some(blob) = message.lazy_load_blob.clone() else {
            let error = fail(
                CommandErrorKind::MissingBlob,
                "process startup requires the code as a blob".into(),
            );
            return self.fail_command(message, error, reference);
        };
        if let Err(error) = self.check_new_process_id(&init.id) {
            let kind = match error {
                NewProcessError::Invalid(_) => CommandErrorKind::InvalidProcessId,
                NewProcessError::Reserved(_) => CommandErrorKind::KernelProcess,
                NewProcessError::Exists(_) => CommandErrorKind::ProcessExists,
            };
            return self.fail_command(message, fail(kind, error.to_string()), reference);
        }
        let keys = match canonical_keys(&init.initial_capabilities) {
            Ok(keys) => keys,
            Err(error) => {
                return self.fail_command(
                    message,
                    fail(CommandErrorKind::InvalidCapability, error),
                    reference,
                );
            }
        };
        let runtime = match self.loader.load(&init.id, &blob.bytes) {
            Ok(runtime) => runtime,
            Err(error) => {
                return self.fail_command(
                    message,
                    fail(CommandErrorKind::LoadFailed, error),
                    reference,
                );
            }
        };
        let source = message.source.process.clone();
        let (admitted, dropped) = self.admit(&source, keys);
        self.register_initialized(&init, blob, runtime, &admitted);
        if self.table.contains_key(&source) {
            let key = message_key(&self.address_of(&init.id));
            if self.caps.insert(&source, key.clone()) {
                self.trace_caps_changed(&source, vec![key.to_capability()], Vec::new());
            }
        }
        let metadata = (!dropped.is_empty())
            .then(|| serde_json::json!({ "dropped_capabilities": dropped }).to_string());
        self.reply(message, &KernelResponse::InitializedProcess, metadata);
    }

    /// The admission rule: from the kernel every capability is accepted; from anyone else
    /// only those the source holds. Returns (admitted, dropped).
    fn admit(&self, source: &ProcessId, keys: Vec<CapKey>) -> (Vec<Capability>, Vec<Capability>) {
        let mut admitted = Vec::new();
        let mut dropped = Vec::new();
        for key in keys {
            if source.is_kernel() || self.caps.has(source, &key) {
                admitted.push(key.to_capability());
            } else {
                dropped.push(key.to_capability());
            }
        }
        (admitted, dropped)
    }

    fn register_initialized(
        &mut self,
        init: &Initialize,
        blob: LazyLoadBlob,
        runtime: Box<dyn crate::process::Process>,
        admitted: &[Capability],
    ) {
        let mut entry = ProcessEntry::new(
            init.wasm_bytes_handle.clone(),
            init.on_exit.clone(),
            init.public,
            Arc::from(blob.bytes),
        );
        entry.wit_version = init.wit_version;
        let mut caps = admitted.to_vec();
        caps.push(Capability::messaging(self.address_of(&init.id)));
        self.insert_entry(&init.id, entry, Some(runtime), &caps);
    }

    fn command_grant(
        &mut self,
        message: &KernelMessage,
        target: &ProcessId,
        capabilities: &[Capability],
    ) {
        let keys = match self.command_target_keys("GrantCapabilities", target, capabilities) {
            Ok(keys) => keys,
            Err(error) => return self.fail_command(message, error, None),
        };
        let mut added = Vec::new();
        for key in keys {
            if self.caps.insert(target, key.clone()) {
                added.push(key.to_capability());
            }
        }
        self.trace_caps_changed(target, added, Vec::new());
        self.reply_if_expected(message, &KernelResponse::GrantedCapabilities);
    }

    /// Refuses a command that would reconfigure or end the kernel or one of its runtime
    /// modules.
    fn refuse_runtime_target(
        &mut self,
        message: &KernelMessage,
        name: &str,
        target: &ProcessId,
    ) -> bool {
        if !self.is_runtime_process(target) {
            return false;
        }
        let error = CommandError::new(
            name,
            CommandErrorKind::KernelProcess,
            format!("{target} is the kernel's own process; {name} cannot act on it"),
        );
        self.fail_command(message, error, None);
        true
    }

    fn command_drop(
        &mut self,
        message: &KernelMessage,
        target: &ProcessId,
        capabilities: &[Capability],
    ) {
        if self.refuse_runtime_target(message, "DropCapabilities", target) {
            return;
        }
        let keys = match self.command_target_keys("DropCapabilities", target, capabilities) {
            Ok(keys) => keys,
            Err(error) => return self.fail_command(message, error, None),
        };
        let mut removed = Vec::new();
        for key in keys {
            if self.caps.remove(target, &key) {
                removed.push(key.to_capability());
            }
        }
        self.trace_caps_changed(target, Vec::new(), removed);
        self.reply_if_expected(message, &KernelResponse::DroppedCapabilities);
    }

    /// Validates a grant or drop as a whole: the target exists and every params is JSON.
    fn command_target_keys(
        &self,
        name: &str,
        target: &ProcessId,
        capabilities: &[Capability],
    ) -> Result<Vec<CapKey>, CommandError> {
        if !self.table.contains_key(target) {
            return Err(CommandError::new(
                name,
                CommandErrorKind::NoSuchProcess,
                format!("no such process {target}"),
            ));
        }
        // Duplicates are kept: the held set ignores a second insert or remove of one key.
        CapKey::from_capabilities(capabilities).map_err(|error| {
            CommandError::new(name, CommandErrorKind::InvalidCapability, error.to_string())
        })
    }

    fn command_set_on_exit(
        &mut self,
        message: &KernelMessage,
        target: &ProcessId,
        on_exit: OnExit,
    ) {
        if self.refuse_runtime_target(message, "SetOnExit", target) {
            return;
        }
        let Some(entry) = self.table.get_mut(target) else {
            let error = CommandError::new(
                "SetOnExit",
                CommandErrorKind::NoSuchProcess,
                format!("no such process {target}"),
            );
            return self.fail_command(message, error, None);
        };
        entry.on_exit = on_exit;
        self.mark_dirty(target);
        self.reply_if_expected(message, &KernelResponse::ChangedOnExit);
    }

    fn command_run(&mut self, message: &KernelMessage, process: &ProcessId) {
        let reference = Some(KernelResponse::RunProcessError);
        let Some(entry) = self.table.get(process) else {
            let error = CommandError::new(
                "RunProcess",
                CommandErrorKind::NoSuchProcess,
                format!("no such process {process} to run"),
            );
            return self.fail_command(message, error, reference);
        };
        if process.is_kernel() {
            let error = CommandError::new(
                "RunProcess",
                CommandErrorKind::KernelProcess,
                "the kernel is not a process to run",
            );
            return self.fail_command(message, error, reference);
        }
        // Already running: succeed without injecting a stray `run` (W23).
        if entry.state == super::RunState::PreBoot {
            self.start(process);
        }
        self.reply(message, &KernelResponse::StartedProcess, None);
    }

    fn command_kill(&mut self, message: &KernelMessage, request: &Request, process: &ProcessId) {
        if process.is_kernel() {
            let error = CommandError::new(
                "KillProcess",
                CommandErrorKind::KernelProcess,
                "the kernel cannot be killed; use Shutdown",
            );
            return self.fail_command(message, error, None);
        }
        if self.refuse_runtime_target(message, "KillProcess", process) {
            return;
        }
        let revoke = request.metadata.as_deref() != Some(NO_REVOKE);
        if !self.kill(process, revoke) {
            let error = CommandError::new(
                "KillProcess",
                CommandErrorKind::NoSuchProcess,
                format!("no such process {process} to kill"),
            );
            return self.fail_command(message, error, None);
        }
        self.reply_if_expected(message, &KernelResponse::KilledProcess(process.clone()));
    }

    fn command_debug(&mut self, message: &KernelMessage, print: &KernelPrint) {
        let response = match print {
            KernelPrint::ProcessMap => {
                let map = self
                    .table
                    .keys()
                    .filter_map(|id| Some((id.clone(), self.userspace_process(id)?)))
                    .collect();
                KernelPrintResponse::ProcessMap(map)
            }
            KernelPrint::Process(id) => KernelPrintResponse::Process(self.userspace_process(id)),
            KernelPrint::HasCap { on, cap } => {
                let held = self.table.contains_key(on).then(|| {
                    CapKey::try_from_capability(cap).is_ok_and(|key| self.caps.has(on, &key))
                });
                KernelPrintResponse::HasCap(held)
            }
        };
        self.reply(message, &KernelResponse::Debug(response), None);
    }

    /// The `Debug` view of a process: its record with capabilities in canonical order.
    pub fn userspace_process(&self, process: &ProcessId) -> Option<UserspacePersistedProcess> {
        let entry = self.table.get(process)?;
        Some(UserspacePersistedProcess {
            wasm_bytes_handle: entry.wasm_bytes_handle.clone(),
            wit_version: entry.wit_version,
            on_exit: entry.on_exit.clone(),
            capabilities: self.capabilities_of(process),
            public: entry.public,
        })
    }
}

fn message_key(issuer: &crate::types::Address) -> CapKey {
    CapKey::messaging(issuer.clone())
}

/// Canonical keys of `capabilities`, deduplicated in order, or the first error's text.
/// O(n log n): a set remembers what was seen (a list scan made a 100 000-capability grant
/// take 40 s).
fn canonical_keys(capabilities: &[Capability]) -> Result<Vec<CapKey>, String> {
    let all = CapKey::from_capabilities(capabilities).map_err(|error| error.to_string())?;
    let total = all.len();
    let mut seen: std::collections::BTreeSet<CapKey> = std::collections::BTreeSet::new();
    let mut keys: Vec<CapKey> = Vec::with_capacity(total);
    for key in all {
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    }
    assert_eq!(keys.len(), seen.len(), "every kept key is distinct");
    assert!(keys.len() <= total, "deduplication only removes");
    Ok(keys)
}

//! The door for messages from other nodes (`Input::Submit`), and the harness's door for
//! messages from local senders (`Input::Local`).
//!
//! Invariants, kept by `submit` before anything is queued:
//! - a message from another node never has a source on our node (or the literal `our`): such a
//!   message is dropped as `SpoofedSource`, so no remote node acts as our kernel or as one of
//!   our processes;
//! - a message from another node is for our node: a node never relays (`Relay`);
//! - every capability it carries that names our node as issuer verifies under our key; the
//!   others are removed (`Event::CapabilitiesPruned`), as the reference prunes them. A
//!   capability issued by another node is that node's word, and grants nothing here.
//!
//! Dropped remote messages answer nobody: their sender is on another node.

use super::{Kernel, KernelError};
use crate::trace::{DropReason, Event};
use crate::types::{Address, KernelMessage, Message};

impl Kernel {
    /// A message from another node (module docs): checked, its capabilities pruned, then put
    /// in the inbox to pass the same routing checks as any other. A message refused by the
    /// checks is traced as dropped, and `Ok`.
    ///
    /// # Errors
    /// `ShutDown`, `Stopped`, or `InboxFull` (backpressure: nothing was queued).
    pub(crate) fn submit(&mut self, mut message: KernelMessage) -> Result<(), KernelError> {
        self.submit_open()?;
        if let Err(reason) = self.check_remote(&message) {
            let event = Event::Dropped {
                id: message.id,
                source: message.source,
                target: message.target,
                reason,
            };
            self.trace.push(self.clock.now(), event);
            return Ok(());
        }
        self.prune_remote_capabilities(&mut message);
        let our = std::sync::Arc::clone(&self.our);
        self.net.heard_from(&message.source.node, &our);
        debug_assert!(
            !self.is_our_node(&message.source),
            "a queued remote message has a remote source"
        );
        self.enqueue_inbox(Box::new(message));
        Ok(())
    }

    /// A message as if a sender on our node (a process, or the kernel) sent it, for harnesses
    /// that stand in for local senders: the simulator's setup commands and tests. It passes
    /// the routing checks as any other. Bytes from outside the node never come through here:
    /// they are other nodes' messages (`submit`) or a driven process's (`Kernel::input`).
    ///
    /// # Errors
    /// `ShutDown`, `Stopped`, or `InboxFull` (backpressure: nothing was queued).
    pub(crate) fn submit_local(&mut self, message: KernelMessage) -> Result<(), KernelError> {
        self.submit_open()?;
        assert!(
            self.is_our_node(&message.source),
            "submit_local is for senders on our node, not {}",
            message.source
        );
        self.enqueue_inbox(Box::new(message));
        Ok(())
    }

    fn submit_open(&self) -> Result<(), KernelError> {
        if self.shut_down {
            return Err(KernelError::ShutDown);
        }
        if self.durable.failure.is_some() {
            return Err(KernelError::Stopped);
        }
        if self.inbox.len() >= self.config.inbox_len_max {
            return Err(KernelError::InboxFull);
        }
        Ok(())
    }

    /// Whether `address` is on our node (by name, or the literal `our`).
    fn is_our_node(&self, address: &Address) -> bool {
        *address.node == *self.our || &*address.node == "our"
    }

    /// Why a remote message may not enter (module docs), if it may not.
    fn check_remote(&self, message: &KernelMessage) -> Result<(), DropReason> {
        if self.is_our_node(&message.source) {
            return Err(DropReason::SpoofedSource);
        }
        if !self.is_our_node(&message.target) {
            return Err(DropReason::Relay);
        }
        Ok(())
    }

    /// Removes the capabilities that claim our node as issuer and do not verify.
    fn prune_remote_capabilities(&mut self, message: &mut KernelMessage) {
        let caps = match &mut message.message {
            Message::Request(request) => &mut request.capabilities,
            Message::Response((response, _)) => &mut response.capabilities,
        };
        if caps.is_empty() {
            return;
        }
        let before = caps.len();
        let mut pruned = Vec::new();
        let our = &*self.our;
        let store = &self.caps;
        caps.retain(|(cap, signature)| {
            let ours = *cap.issuer.node == *our || &*cap.issuer.node == "our";
            let kept = !ours || (*cap.issuer.node == *our && store.verify(cap, signature));
            if !kept {
                pruned.push(cap.clone());
            }
            kept
        });
        assert_eq!(
            caps.len() + pruned.len(),
            before,
            "each capability kept or pruned"
        );
        if !pruned.is_empty() {
            let event = Event::CapabilitiesPruned {
                id: message.id,
                source: message.source.clone(),
                capabilities: pruned,
            };
            self.trace.push(self.clock.now(), event);
        }
    }
}

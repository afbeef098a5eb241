//! The reference kernel's data types, with its exact JSON shapes (spec §1).

mod capability;
mod id;
mod message;
pub mod net;
mod on_exit;

pub use capability::{
    Capability, CapabilityError, MESSAGING_PARAMS, NETWORK_PARAMS,
    deserialize_list as deserialize_capabilities,
};
pub use id::{Address, AddressParseError, NodeId, PackageId, ProcessId};
pub use message::{
    Context, KernelMessage, LazyLoadBlob, Message, Request, Response, SendError, SendErrorKind,
    SignedCapability, WrappedSendError,
};
pub use on_exit::OnExit;

impl ProcessId {
    /// `kernel:distro:sys`.
    pub fn kernel() -> Self {
        well_known("kernel")
    }

    /// `timer:distro:sys`.
    pub fn timer() -> Self {
        well_known("timer")
    }

    /// `net:distro:sys`.
    pub fn net() -> Self {
        well_known("net")
    }

    /// Whether this is `kernel:distro:sys` exactly (full match: the W1 fix).
    pub fn is_kernel(&self) -> bool {
        self.as_str() == "kernel:distro:sys"
    }
}

fn well_known(name: &str) -> ProcessId {
    match ProcessId::new(name, "distro", "sys") {
        Ok(id) => id,
        // Unreachable: three non-empty colon-free literals always parse.
        Err(_) => unreachable!("well-known ids parse"),
    }
}

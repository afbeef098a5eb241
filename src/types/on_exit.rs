//! `OnExit`: what the kernel does when a process's `init` returns or traps (spec §1.8, §5.3).

use crate::types::{Address, LazyLoadBlob, Request};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What to do when a process exits. The seed's older name for this type is `OnPanic`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnExit {
    /// Remove the process and revoke the capabilities it issued.
    #[default]
    None,
    /// Start it again, with the reference's backoff.
    Restart,
    /// Send these requests as the process, then remove it.
    Requests(Vec<(Address, Request, Option<LazyLoadBlob>)>),
}

impl OnExit {
    /// True only for `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// True only for `Restart`.
    pub fn is_restart(&self) -> bool {
        matches!(self, Self::Restart)
    }
}

impl fmt::Display for OnExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Restart => "Restart",
            Self::Requests(_) => "Requests",
        })
    }
}

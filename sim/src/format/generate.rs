//! Workload generators as a scenario writes them (`crate::node::generate` expands them per seed).

use hyperkernel::Address;
use serde::{Deserialize, Serialize};

/// Most entries one generator may produce.
pub const COUNT_MAX: u64 = 1_000_000;

/// One generator.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    /// The generator's kind; this build knows `requests`.
    pub kind: String,
    /// How many entries.
    pub count: u64,
    /// Earliest time, simulated milliseconds.
    #[serde(default)]
    pub start_ms: u64,
    /// Latest time, simulated milliseconds.
    pub end_ms: u64,
    /// Driven processes that send.
    pub from: Vec<String>,
    /// Addresses sent to.
    pub to: Vec<String>,
    /// Bodies to choose from.
    pub bodies: Vec<String>,
    /// Seconds to wait for each response; none for fire-and-forget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expects_response: Option<u64>,
}

/// The kinds this build knows.
pub const KINDS: &[&str] = &["requests"];

impl GeneratorSpec {
    /// Why the generator cannot be used, if it cannot. `driven` says whether an id names a
    /// driven process of the scenario.
    pub fn problem(&self, run_for_ms: u64, driven: &dyn Fn(&str) -> bool) -> Option<String> {
        if !KINDS.contains(&self.kind.as_str()) {
            return Some(format!(
                "unknown kind `{}` (known: {})",
                self.kind,
                KINDS.join(", ")
            ));
        }
        if self.count > COUNT_MAX {
            return Some(format!("count {} is over {COUNT_MAX}", self.count));
        }
        if self.start_ms > self.end_ms || self.end_ms > run_for_ms {
            return Some(format!(
                "give start_ms <= end_ms <= run_for_ms ({run_for_ms})"
            ));
        }
        for (name, list) in [
            ("from", &self.from),
            ("to", &self.to),
            ("bodies", &self.bodies),
        ] {
            if list.is_empty() {
                return Some(format!("`{name}` is empty"));
            }
        }
        if let Some(id) = self.from.iter().find(|id| !driven(id)) {
            return Some(format!("`{id}` is not a driven process of this scenario"));
        }
        if let Some((to, e)) = self
            .to
            .iter()
            .find_map(|to| to.parse::<Address>().err().map(|e| (to, e)))
        {
            return Some(format!("to `{to}`: {e}"));
        }
        None
    }
}

//! Named, seeded workload generators: a scenario can ask for many messages drawn from the
//! seed instead of listing them. Each seed expands the generators into plain workload entries
//! before the run (from the seed's `Workload` stream), so a run, its trace and `sim shrink`
//! see ordinary entries.
//!
//! Kinds: `requests` sends `count` requests, each at a uniform time in `start_ms..=end_ms`,
//! from a uniform member of `from` to a uniform member of `to` with a uniform member of
//! `bodies`, expecting a response within `expects_response` seconds when given.

use crate::scenario::{SendSpec, WorkSpec};
use hyperkernel::{Address, Entropy, Stream};
use rand_core::Rng;
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

fn pick<'a>(rng: &mut impl Rng, list: &'a [String]) -> &'a str {
    let len = u64::try_from(list.len()).unwrap_or(u64::MAX).max(1);
    let index = usize::try_from(rng.next_u64() % len).unwrap_or(0);
    list.get(index).map_or("", String::as_str)
}

/// The entries `generators` make for `seed`, in generator order.
pub fn expand(generators: &[GeneratorSpec], seed: u64) -> Vec<WorkSpec> {
    let mut rng = Entropy::stream(seed, Stream::Workload);
    let mut out = Vec::new();
    for generator in generators {
        // Validated: start_ms <= end_ms <= MS_MAX.
        let span = generator
            .end_ms
            .saturating_sub(generator.start_ms)
            .saturating_add(1);
        for _ in 0..generator.count {
            let at_ms = generator.start_ms.saturating_add(rng.next_u64() % span);
            let from = pick(&mut rng, &generator.from).to_owned();
            let to = pick(&mut rng, &generator.to).to_owned();
            let body = pick(&mut rng, &generator.bodies).to_owned();
            out.push(WorkSpec {
                at_ms,
                from,
                send: Some(SendSpec {
                    to,
                    body,
                    expects_response: generator.expects_response,
                }),
                command: None,
                expects_response: None,
            });
        }
    }
    out
}

//! Named, seeded workload generators: a scenario can ask for many messages drawn from the
//! seed instead of listing them. Each seed expands the generators into plain workload entries
//! before the run (from the seed's `Workload` stream), so a run, its trace and `sim shrink`
//! see ordinary entries.
//!
//! Kinds: `requests` sends `count` requests, each at a uniform time in `start_ms..=end_ms`,
//! from a uniform member of `from` to a uniform member of `to` with a uniform member of
//! `bodies`, expecting a response within `expects_response` seconds when given.

use crate::format::{SendSpec, WorkSpec};
use crate::node::streams::{SimStream, rng as stream};
use rand_core::Rng;

pub use crate::format::generate::{COUNT_MAX, GeneratorSpec, KINDS};

fn pick<'a>(rng: &mut impl Rng, list: &'a [String]) -> &'a str {
    let len = u64::try_from(list.len()).unwrap_or(u64::MAX).max(1);
    let index = usize::try_from(rng.next_u64() % len).unwrap_or(0);
    list.get(index).map_or("", String::as_str)
}

/// The entries `generators` make for `seed`, in generator order.
pub fn expand(generators: &[GeneratorSpec], seed: u64) -> Vec<WorkSpec> {
    let mut rng = stream(seed, SimStream::Workload);
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

//! Faults of a world drawn per seed, after the best simulators' models
//! (`../shared/notes/worlds.md` §3): partitions in TigerBeetle's modes (uniform size, uniform,
//! isolate one node; both ways or one way) each holding for a stability window before it heals;
//! clogs of a link or of a node's interface, with FoundationDB's swizzle (clog nodes one after
//! another, unclog them in reverse order); connection resets; node crashes with a downtime.
//!
//! Each kind arrives as a Poisson process at its rate over `[0, until_ms)`, on its own random
//! stream of the world's seed, so adding a kind never moves another's draws. With `swarm`,
//! each kind is on in half the seeds, at a rate scaled per seed (TigerBeetle's swarm testing).
//! The draws become explicit workload entries ([`draw`]): a failing seed's fault schedule is
//! printed, replayed and shrunk as entries.
//!
//! Faults beyond the reference (reordering within a pair, duplicates, losing one message) are
//! per-message probabilities of the network, off unless `beyond_reference` sets them, and
//! flagged in the run's summary when on.

use crate::format::world::WorldWork;
pub use crate::format::world::{
    BeyondSpec, ClogSpec, CrashSpec, DRAWN_MAX, PartitionSpec, RateSpec, WorldFaultSpec,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform draw in `[min, max]`.
fn between(rng: &mut ChaCha8Rng, min: u64, max: u64) -> u64 {
    debug_assert!(min <= max, "a range's ends in order");
    min + rng.next_u64() % (max - min).saturating_add(1).max(1)
}

/// An exponential draw with mean `mean` (ms, as f64), capped at a day.
fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    let value = -(1.0 - unit(rng)).ln() * mean;
    if value.is_finite() {
        value.min(86_400_000.0) as u64
    } else {
        0
    }
}

/// The seed's stream for one kind of fault.
fn stream(seed: u64, kind: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(20 + kind);
    rng
}

/// Poisson arrival times at `per_second` over `[0, until)`, from `start`.
fn next_arrival(rng: &mut ChaCha8Rng, at: u64, per_second: f64) -> Option<u64> {
    if per_second <= 0.0 {
        return None;
    }
    let gap = exponential(rng, 1000.0 / per_second).max(1);
    at.checked_add(gap)
}

fn entry(at_ms: u64) -> WorldWork {
    WorldWork {
        at_ms,
        ..WorldWork::default()
    }
}

fn names_of(names: &[String], picks: &[usize]) -> Vec<String> {
    picks.iter().map(|i| names[*i].clone()).collect()
}

/// Two sides of a partition in one of TigerBeetle's modes.
fn sides(rng: &mut ChaCha8Rng, n: usize) -> (Vec<usize>, Vec<usize>) {
    debug_assert!(n >= 2, "a partition needs two nodes");
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let size = match rng.next_u64() % 3 {
        // Uniform size: one side has 1..n-1 nodes.
        0 => 1 + (rng.next_u64() % (n as u64 - 1)) as usize,
        // Uniform: each node on either side, at least one on each.
        1 => (0..n)
            .filter(|_| rng.next_u64().is_multiple_of(2))
            .count()
            .clamp(1, n - 1),
        // Isolate one node.
        _ => 1,
    };
    let (a, b) = order.split_at(size);
    assert!(!a.is_empty() && !b.is_empty(), "both sides hold a node");
    (a.to_vec(), b.to_vec())
}

fn partitions(
    spec: &PartitionSpec,
    rate: f64,
    seed: u64,
    names: &[String],
    until: u64,
) -> Vec<WorldWork> {
    let mut rng = stream(seed, 0);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = next_arrival(&mut rng, at, rate).filter(|t| *t < until) {
        if out.len() >= DRAWN_MAX || names.len() < 2 {
            break;
        }
        let (a, b) = sides(&mut rng, names.len());
        let [min, max] = spec.heal_after_ms;
        let heal = start.saturating_add(between(&mut rng, min, max)).min(until);
        let one_way = unit(&mut rng) < spec.one_way;
        out.push(WorldWork {
            cut: Some([names_of(names, &a), names_of(names, &b)]),
            one_way,
            ..entry(start)
        });
        out.push(WorldWork {
            heal: true,
            ..entry(heal)
        });
        // The next partition comes only after this one healed (a stability window).
        at = heal;
    }
    out
}

fn clogs(spec: &ClogSpec, rate: f64, seed: u64, names: &[String], until: u64) -> Vec<WorldWork> {
    let mut rng = stream(seed, 1);
    let mut out = Vec::new();
    let mut at = 0;
    let mean = spec.mean_ms as f64;
    while let Some(start) = next_arrival(&mut rng, at, rate).filter(|t| *t < until) {
        if out.len() >= DRAWN_MAX {
            break;
        }
        at = start;
        if spec.swizzle && unit(&mut rng) < 0.3 {
            // Swizzle: nodes clogged one after another, unclogged in reverse order.
            let count = 1 + (rng.next_u64() % names.len() as u64) as usize;
            let gap = (spec.mean_ms / count as u64).max(1);
            for i in 0..count {
                let node = (rng.next_u64() % names.len() as u64) as usize;
                let begin = start.saturating_add(gap * i as u64).min(until);
                out.push(WorldWork {
                    clog_node: Some(names[node].clone()),
                    for_ms: Some(gap * 2 * (count - i) as u64),
                    ..entry(begin)
                });
            }
        } else if names.len() >= 2 {
            let (a, b) = sides(&mut rng, names.len());
            out.push(WorldWork {
                clog: Some([names[a[0]].clone(), names[b[0]].clone()]),
                for_ms: Some(exponential(&mut rng, mean)),
                ..entry(start)
            });
        }
    }
    out
}

fn resets(rate: f64, seed: u64, names: &[String], until: u64) -> Vec<WorldWork> {
    let mut rng = stream(seed, 2);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = next_arrival(&mut rng, at, rate).filter(|t| *t < until) {
        if out.len() >= DRAWN_MAX || names.len() < 2 {
            break;
        }
        at = start;
        let (a, b) = sides(&mut rng, names.len());
        out.push(WorldWork {
            reset: Some([names[a[0]].clone(), names[b[0]].clone()]),
            ..entry(start)
        });
    }
    out
}

fn crashes(spec: &CrashSpec, rate: f64, seed: u64, names: &[String], until: u64) -> Vec<WorldWork> {
    let mut rng = stream(seed, 3);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = next_arrival(&mut rng, at, rate).filter(|t| *t < until) {
        if out.len() >= DRAWN_MAX {
            break;
        }
        at = start;
        let may: Vec<&String> = match &spec.nodes {
            Some(nodes) => names.iter().filter(|n| nodes.contains(n)).collect(),
            None => names.iter().collect(),
        };
        let Some(&name) = may.get((rng.next_u64() % may.len().max(1) as u64) as usize) else {
            break;
        };
        out.push(WorldWork {
            crash: Some(name.clone()),
            downtime_ms: Some(between(&mut rng, 1, spec.max_downtime_ms)),
            ..entry(start)
        });
    }
    out
}

/// Each kind's rate for `seed`: as given, or with `swarm` on in half the seeds and scaled.
fn rates(spec: &WorldFaultSpec, seed: u64) -> [f64; 4] {
    let given = [
        spec.partition.map_or(0.0, |p| p.per_second),
        spec.clog.map_or(0.0, |c| c.per_second),
        spec.reset.map_or(0.0, |r| r.per_second),
        spec.crash.as_ref().map_or(0.0, |c| c.per_second),
    ];
    if !spec.swarm {
        return given;
    }
    let mut rng = stream(seed, 9);
    given.map(|rate| {
        let on = rng.next_u64().is_multiple_of(2);
        let scale = unit(&mut rng);
        if on { rate * scale } else { 0.0 }
    })
}

/// The fault entries `spec` draws for `seed` in a world of `names` running `run_for_ms`, in
/// time order (at most [`DRAWN_MAX`] of each kind).
pub fn draw(spec: &WorldFaultSpec, seed: u64, names: &[String], run_for_ms: u64) -> Vec<WorldWork> {
    let until = spec.until_ms.unwrap_or(run_for_ms).min(run_for_ms);
    let [partition, clog, reset, crash] = rates(spec, seed);
    let mut out = Vec::new();
    if let Some(p) = &spec.partition {
        out.extend(partitions(p, partition, seed, names, until));
    }
    if let Some(c) = &spec.clog {
        out.extend(clogs(c, clog, seed, names, until));
    }
    if spec.reset.is_some() {
        out.extend(resets(reset, seed, names, until));
    }
    if let Some(c) = &spec.crash {
        out.extend(crashes(c, crash, seed, names, until));
    }
    out.sort_by_key(|work| work.at_ms);
    assert!(
        out.iter().all(|work| work.at_ms <= run_for_ms),
        "drawn faults stay within the run"
    );
    out
}

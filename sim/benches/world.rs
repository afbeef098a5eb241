//! Figures of worlds (issue 23), medians of wall time:
//!
//! - A world of 10 nodes with 100 wasm processes each (50 pingpong guests, 50 echo guests), every
//!   pingpong playing rounds with an echo on the next node: seeds per second on one thread
//!   (setup included) and time compression (simulated seconds per wall second of the run).
//! - The same one-node scenario as a one-node run and as a world of one node: seeds per second
//!   of each and their ratio (the world's overhead on one node).
//! - `explore` of the 10-node world on two threads: seeds per second (each run twice).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock"
)]

use hyperkernel_sim::node::scenario::Scenario;
use hyperkernel_sim::run::{Options, run};
use hyperkernel_sim::tools::explore::{Exploration, explore_with};
use hyperkernel_sim::world::drive::{explore_seed, run_world};
use hyperkernel_sim::world::spec::WorldScenario;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

const NODES: usize = 10;
const PAIRS: usize = 50;
const ROUNDS: u64 = 10;

fn node_name(n: usize) -> String {
    format!("n{n}.os")
}

/// The processes of one node: a driven client, `PAIRS` pingpongs and `PAIRS` echoes.
fn processes() -> Vec<Value> {
    let mut out = vec![
        json!({ "id": "client:b:b.os", "driven": true, "public": true,
        "capabilities": ["network"] }),
    ];
    for i in 0..PAIRS {
        out.push(
            json!({ "id": format!("ping{i}:b:b.os"), "guest": "pingpong", "public": true,
            "capabilities": ["network"] }),
        );
        out.push(
            json!({ "id": format!("echo{i}:b:b.os"), "guest": "echo", "public": true,
            "capabilities": ["network"] }),
        );
    }
    out
}

/// Every pingpong of node `n` starts `ROUNDS` rounds with its echo on node `to`.
fn starts(n: usize, to: usize) -> Vec<Value> {
    (0..PAIRS)
        .map(|i| {
            json!({ "at_ms": 0, "node": node_name(n), "from": "client:b:b.os",
                "send": { "to": format!("{}@ping{i}:b:b.os", node_name(n)),
                    "body": format!("{ROUNDS} {}@echo{i}:b:b.os", node_name(to)),
                    "expects_response": 600 } })
        })
        .collect()
}

fn world(nodes: usize) -> WorldScenario {
    let names: Vec<Value> = (0..nodes)
        .map(|n| json!({ "name": node_name(n), "processes": processes() }))
        .collect();
    let workload: Vec<Value> = (0..nodes)
        .flat_map(|n| starts(n, (n + 1) % nodes))
        .collect();
    let file = json!({ "version": 1, "nodes": names, "workload": workload,
        "network": { "delay_ms": { "min": 1, "mean": 5 } }, "run_for_ms": 120_000 });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/worlds/bench.json");
    WorldScenario::parse(&path, &file.to_string()).unwrap()
}

/// The one-node form of a world of one node.
fn one_node() -> Scenario {
    let workload: Vec<Value> = starts(0, 0)
        .into_iter()
        .map(|mut w| {
            w.as_object_mut().unwrap().remove("node");
            w
        })
        .collect();
    let file = json!({ "version": 1, "node": node_name(0), "processes": processes(),
        "workload": workload, "run_for_ms": 120_000, "network": { "peers": [] } });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bench.json");
    Scenario::parse(&path, &file.to_string()).unwrap()
}

/// The time of the world's last network event: when its work was done.
fn last_event(world: &hyperkernel_sim::world::World) -> f64 {
    let at = world.lines().iter().rev().find_map(|line| match line {
        hyperkernel_sim::world::Line::Net { at, .. } => Some(at.0),
        hyperkernel_sim::world::Line::Node { .. } => None,
    });
    at.unwrap_or(0) as f64 / 1e9
}

/// Seconds of wall time per seed (median of `runs`), and simulated seconds of work (to the
/// last network event) per wall second.
fn time_world(scenario: &WorldScenario, runs: u64) -> (f64, f64) {
    let mut walls = Vec::new();
    let mut compressions = Vec::new();
    for seed in 0..runs {
        let started = Instant::now();
        let outcome = run_world(scenario, seed).unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        walls.push(wall);
        compressions.push(last_event(&outcome.world) / wall);
    }
    (median(walls), median(compressions))
}

fn main() {
    let big = world(NODES);
    let mut idle = big.clone();
    idle.file.workload.clear();
    idle.actions.clear();
    let (setup, _) = time_world(&idle, 5);
    let (wall, compression) = time_world(&big, 5);
    let messages = NODES * PAIRS * ROUNDS as usize * 2;
    println!(
        "world {NODES} nodes x {} wasm processes, {messages} messages across nodes: \
         {:.2} seeds/s on one thread ({:.0} ms a seed, {:.0} ms of it setting up the nodes), \
         {:.1} us a message after setup, compression {compression:.1}x (simulated time to the \
         last message per wall second)",
        PAIRS * 2 + 1,
        1.0 / wall,
        wall * 1e3,
        setup * 1e3,
        (wall - setup) / messages as f64 * 1e6
    );
    let mut alone = Vec::new();
    let mut as_world = Vec::new();
    let single = one_node();
    let of_one = world(1);
    for seed in 0..9 {
        let started = Instant::now();
        assert!(
            run(&single, seed, Options::default())
                .unwrap()
                .error
                .is_none()
        );
        alone.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        assert!(run_world(&of_one, seed).unwrap().error.is_none());
        as_world.push(started.elapsed().as_secs_f64());
    }
    let (alone, as_world) = (median(alone), median(as_world));
    println!(
        "one node ({} wasm processes): {:.1} seeds/s as a one-node run, {:.1} as a world of one \
         (world/one-node time {:.2})",
        PAIRS * 2,
        1.0 / alone,
        1.0 / as_world,
        as_world / alone
    );
    let plan = Exploration {
        seeds: 0..8,
        jobs: 2,
        options: Options::default(),
        fresh_every: 0,
    };
    let started = Instant::now();
    let results = explore_with(&plan, &|_, _| {}, &|seed| explore_seed(&big, seed, &plan));
    let wall = started.elapsed().as_secs_f64();
    assert!(
        results
            .iter()
            .all(|r| r.failure.is_none() && r.divergence.is_none())
    );
    println!(
        "explore of the {NODES}-node world on 2 threads: {:.2} seeds/s (each run twice)",
        results.len() as f64 / wall
    );
}

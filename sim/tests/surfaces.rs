//! The fuzz targets' bodies (`hyperkernel_sim::tools::fuzzing`) run as tests: over every committed
//! seed of their targets (`tests/fuzz/seeds/`) and over a seeded stream of mutations of them,
//! so `cargo test` holds each surface to its oracle even where cargo-fuzz does not run.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use hyperkernel_sim::tools::fuzzing;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::path::PathBuf;

/// The committed seeds of fuzz target `target`.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{target} has seeds");
    files
        .iter()
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

/// Each seed as it is, then `mutations` of them: bytes flipped, cut, repeated or spliced.
fn run(target: &str, mutations: usize, body: fn(&[u8])) {
    let seeds = seeds(target);
    for seed in &seeds {
        body(seed);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    for _ in 0..mutations {
        let mut input = seeds[rng.next_u32() as usize % seeds.len()].clone();
        for _ in 0..=rng.next_u32() % 4 {
            let at = if input.is_empty() {
                0
            } else {
                rng.next_u32() as usize % input.len()
            };
            match rng.next_u32() % 4 {
                0 if !input.is_empty() => input[at] ^= 1 << (rng.next_u32() % 8),
                1 => input.truncate(at),
                2 => input.insert(at, rng.next_u32() as u8),
                _ => {
                    let other = &seeds[rng.next_u32() as usize % seeds.len()];
                    input.extend_from_slice(&other[..other.len().min(32)]);
                }
            }
        }
        body(&input);
    }
}

#[test]
fn the_door_answers_every_request_within_its_bound() {
    run("door", 300, fuzzing::door);
}

#[test]
fn no_vfs_request_forges_a_capability() {
    run("vfs", 300, fuzzing::vfs_requests);
}

#[test]
fn no_remote_message_forges_a_capability() {
    run("remote", 300, fuzzing::remote_messages);
}

#[test]
fn terminal_lines_parse_or_say_why() {
    run("terminal", 1000, fuzzing::terminal_line);
}

#[test]
fn package_directories_read_or_say_why() {
    run("package", 200, fuzzing::package_dir);
}

#[test]
fn journal_segments_read_and_replay_or_say_where_they_are_damaged() {
    run("journal", 60, fuzzing::journal_segment);
}

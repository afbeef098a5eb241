//! `sim explore` as a user runs it: clean scenarios pass every seed (each run twice, some in a
//! fresh process); the planted capability bug is found within a few seeds, and the printed
//! command reproduces it.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap()
}

fn example(name: &str) -> String {
    format!("{}/scenarios/{name}.json", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn clean_scenarios_pass_every_seed_deterministically() {
    for name in ["capabilities", "echo"] {
        let output = sim(&["explore", &example(name), "--seeds", "0..12", "--jobs", "2"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("passed      12"), "{stdout}");
        assert!(stdout.contains("failed      0"), "{stdout}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("12/12 seeds"),
            "progress is shown"
        );
    }
}

#[test]
fn the_planted_bug_is_found_and_the_printed_command_reproduces_it() {
    let scenario = example("capabilities");
    let output = sim(&[
        "explore",
        &scenario,
        "--seeds",
        "0..8",
        "--jobs",
        "2",
        "--planted-bug",
    ]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout
        .lines()
        .find(|l| l.starts_with("seed "))
        .expect("a failing seed");
    assert!(first.contains("without a messaging capability"), "{first}");
    let command = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: sim "))
        .expect("a reproduce line");
    let args: Vec<&str> = command.split(' ').collect();
    let replay = sim(&args);
    assert!(!replay.status.success(), "the reproduction fails too");
    let reason = first.split_once(": ").unwrap().1;
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains(reason),
        "the same failure"
    );
}

#[test]
fn a_bad_seed_range_is_refused() {
    let output = sim(&["explore", &example("echo"), "--seeds", "5..5"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`5..5` is empty"));
}

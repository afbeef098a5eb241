//! Real apps as their developers run them: the example apps in `guests/apps` (written with
//! `hyperware_process_lib`, built for `wasm32-wasip1` by `sim build`) and their kit test
//! packages under `sim test` across seeds with faults; a bug planted in an app caught, its
//! printed command reproducing it and its trace replayed to the failure; and bad tests.toml,
//! manifests and packages refused with the file, place and problem.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{sim, temp, text};
use std::path::{Path, PathBuf};
use std::process::Output;

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/apps")
}

fn at(relative: &str) -> String {
    apps().join(relative).to_string_lossy().into_owned()
}

/// `sim build` of the example packages (the counter with `features`).
fn build(features: &str) {
    let counter = at("counter");
    let mut args = vec!["build", counter.as_str()];
    if !features.is_empty() {
        args.extend(["--features", features]);
    }
    let built = sim(&args);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let others = [
        at("counter/test/counter-test"),
        at("files"),
        at("files/test/files-test"),
    ];
    let mut args = vec!["build"];
    args.extend(others.iter().map(String::as_str));
    let built = sim(&args);
    assert!(built.status.success(), "{}", text(&built.stderr));
    assert!(text(&built.stdout).contains("files-test.wasm"));
}

/// `sim test` of `app`'s tests.toml under the example faults: building its packages first as
/// kit does, or with `--no-build` running them as built.
fn sim_test(app: &str, seeds: &str, out: &Path, build: bool) -> Output {
    let tests = format!("{app}/test/tests.toml");
    sim_test_of(&tests, "faults.json", seeds, out, build)
}

/// `sim test` of the tests file `tests` under the faults file `faults` (both under
/// guests/apps), as [`sim_test`] runs it.
fn sim_test_of(tests: &str, faults: &str, seeds: &str, out: &Path, build: bool) -> Output {
    let (tests, faults) = (at(tests), at(faults));
    let out = out.to_string_lossy().into_owned();
    let mut args = vec![
        "test", &tests, "--seeds", seeds, "--faults", &faults, "--out", &out, "--jobs", "2",
    ];
    if !build {
        args.push("--no-build");
    }
    sim(&args)
}

/// The value of the report line that starts with `key`.
fn field(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .trim()
        .to_owned()
}

/// The `sim run …` command a `schedule` line ends with, in parentheses.
fn rerun_of(schedule: &str) -> String {
    schedule
        .rsplit_once("(sim run ")
        .map(|(_, rest)| format!("sim run {}", rest.trim_end_matches(')')))
        .unwrap_or_else(|| panic!("no command in {schedule}"))
}

/// Runs a printed `sim …` command line with the built binary.
fn run_printed(command: &str) -> Output {
    let args: Vec<&str> = command
        .strip_prefix("sim ")
        .unwrap_or_else(|| panic!("not a sim command: {command}"))
        .split(' ')
        .collect();
    sim(&args)
}

fn the_example_apps_pass_over_seeds_with_faults() {
    for (app, test) in [("counter", "counter-test"), ("files", "files-test")] {
        let out = sim_test(app, "0..24", &temp(&format!("{app}-pass")), true);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{app}: {stdout}{}", text(&out.stderr));
        // Built first, as kit run-tests builds: the app and its test package.
        let stderr = text(&out.stderr);
        assert_eq!(stderr.matches("built       ").count(), 2, "{stderr}");
        assert!(
            stdout.contains(&format!("PASS {test}   24 seeds")),
            "{stdout}"
        );
    }
    // A group of two nodes: the counter on both, its test on the first, as a world, under
    // the network's faults.
    let two = "counter/test/two-nodes.toml";
    let out = sim_test_of(
        two,
        "network-faults.json",
        "0..12",
        &temp("counter-two"),
        true,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("on first.os, second.os (a world; the tests on first.os)"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS counter-test   12 seeds"), "{stdout}");
    // A networked app: a chat whose test on the first node sends through its chat to the
    // second node's and reads both histories (built first, as kit does).
    let chat = "chat/test/tests.toml";
    let out = sim_test_of(chat, "faults.json", "0..12", &temp("chat"), true);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("PASS chat-test   12 seeds"), "{stdout}");
    crash_demonstration();
    // A scenario that installs the counter's package and states what the app must show.
    let scenario = at("counter/test/counter.scenario.json");
    let run = sim(&["run", &scenario, "--seed", "3"]);
    assert!(
        run.status.success(),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    // The same scenario expecting a line the app never prints fails, saying so.
    let text_of = std::fs::read_to_string(&scenario).unwrap();
    let wrong = text_of.replace("started at 0$", "started at 9$").replace(
        "\"package\": \"..\"",
        &format!("\"package\": \"{}\"", at("counter")),
    );
    let path = temp("counter-wrong.scenario.json");
    std::fs::write(&path, wrong).unwrap();
    let failed = sim(&["run", path.to_str().unwrap(), "--seed", "3"]);
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains(
            "counter:counter:example.os printed no line matching /^counter: started at 9$/"
        ),
        "{stderr}"
    );
}

/// The expected demonstration (README, "Real apps"): the chat's kit test while the second
/// node crashes (`guests/apps/crash-faults.json`) fails, printing exactly
/// `guests/apps/chat/test/crash-demo.txt` (the output folder written `OUT`, the seeds/s line
/// left out); its replay stops at the tester's report, and its shrunk fault schedule (one
/// crash) reproduces the failure.
fn crash_demonstration() {
    let root = apps().join("../..");
    let out = temp("chat-crash");
    let out_text = out.to_string_lossy().into_owned();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .current_dir(&root)
        .args([
            "test",
            "guests/apps/chat/test/tests.toml",
            "--seeds",
            "0..8",
        ])
        .args(["--faults", "guests/apps/crash-faults.json", "--no-build"])
        .args(["--out", &out_text])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let shown: String = text(&run.stdout)
        .lines()
        .filter(|line| !line.starts_with("seeds/s"))
        .map(|line| line.replace(&out_text, "OUT") + "\n")
        .collect();
    let expected = std::fs::read_to_string(apps().join("chat/test/crash-demo.txt")).unwrap();
    assert_eq!(shown, expected, "the demonstration's output changed");
    let stdout = text(&run.stdout);
    let replay = run_printed(&field(&stdout, "replay"));
    let replayed = text(&replay.stdout);
    let marked = replayed
        .lines()
        .find(|l| l.starts_with("> "))
        .unwrap_or_default();
    assert!(marked.contains("tester: FAIL chat-test"), "{replayed}");
    let schedule = field(&stdout, "schedule");
    let again = run_printed(&rerun_of(&schedule));
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("first.os: test chat-test failed"),
        "{}",
        text(&again.stderr)
    );
}

fn a_planted_bug_is_caught_reproduced_and_replayed() {
    build("planted-bug");
    let out = sim_test("counter", "0..6", &temp("counter-planted"), false);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "the planted bug passed: {stdout}");
    let fail = field(&stdout, "FAIL counter-test");
    assert!(fail.starts_with("6 of 6 seeds, first seed 0:"), "{fail}");
    assert!(
        fail.contains("counter-test/src/lib.rs:"),
        "file, line, column: {fail}"
    );
    // The printed command reproduces the failure.
    let again = run_printed(&field(&stdout, "reproduce"));
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("test counter-test failed: counter-test failed at"),
        "{}",
        text(&again.stderr)
    );
    // The printed replay stops at the tester's report, with the world there.
    let replay = run_printed(&field(&stdout, "replay"));
    let shown = text(&replay.stdout);
    assert!(replay.status.success(), "{shown}{}", text(&replay.stderr));
    let marked = shown
        .lines()
        .find(|l| l.starts_with("> #"))
        .unwrap_or_default();
    assert!(marked.contains("tester: FAIL counter-test"), "{shown}");
    assert!(
        shown.contains("counter:counter:example.os Receiving"),
        "{shown}"
    );
    // The same bug in a group of two nodes: caught, reproduced, replayed to the report.
    let out = temp("counter-two-planted");
    let two = sim_test_of(
        "counter/test/two-nodes.toml",
        "network-faults.json",
        "0..4",
        &out,
        false,
    );
    let stdout = text(&two.stdout);
    assert!(!two.status.success(), "the planted bug passed on two nodes");
    let fail = field(&stdout, "FAIL counter-test");
    assert!(fail.starts_with("4 of 4 seeds, first seed 0:"), "{fail}");
    let again = run_printed(&field(&stdout, "reproduce"));
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("first.os: test counter-test failed: counter-test failed at"),
        "{}",
        text(&again.stderr)
    );
    let replay = run_printed(&field(&stdout, "replay"));
    let shown = text(&replay.stdout);
    assert!(replay.status.success(), "{shown}{}", text(&replay.stderr));
    assert!(shown.contains("tester: FAIL counter-test"), "{shown}");
    // Under the network's faults the failing seed's fault schedule is shrunk (the planted bug
    // needs none of them) into a world that still fails the same way.
    let schedule = field(&stdout, "schedule");
    assert!(
        schedule.starts_with("0 fault entries after shrinking"),
        "{schedule}"
    );
    let again = run_printed(&rerun_of(&schedule));
    assert!(
        text(&again.stderr).contains("test counter-test failed"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn example_apps_pass_their_kit_tests_and_a_planted_bug_is_caught() {
    // One test: the planted build replaces the counter's module for a while.
    build("");
    the_example_apps_pass_over_seeds_with_faults();
    a_planted_bug_is_caught_reproduced_and_replayed();
    build("");
}

/// A package directory at `dir` with `manifest` (its pkg/manifest.json text) and `files`.
fn package(dir: &Path, name: &str, manifest: &str, files: &[&str]) {
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    let metadata = format!(
        r#"{{"name":"{name}","properties":{{"package_name":"{name}","publisher":"t.os","wit_version":1}}}}"#
    );
    std::fs::write(dir.join("metadata.json"), metadata).unwrap();
    std::fs::write(dir.join("pkg/manifest.json"), manifest).unwrap();
    for file in files {
        std::fs::write(dir.join("pkg").join(file), b"\0asm\x01\0\0\0").unwrap();
    }
}

fn tests_toml(dir: &Path, nodes: &str) -> PathBuf {
    let path = dir.join("tests.toml");
    let toml = format!(
        "[[tests]]\nsetup_packages = [{{ path = \"app\", run = true }}]\n\
         test_package_paths = [\"app-test\"]\ntimeout_secs = 5\n{nodes}"
    );
    std::fs::write(&path, toml).unwrap();
    path
}

const NODE: &str = "[[tests.nodes]]\nport = 8080\nhome = \"h\"\nfake_node_name = \"fake\"\n";

fn refused(tests: &Path, expected: &str) {
    let out = sim(&["test", tests.to_str().unwrap(), "--seed", "1", "--no-build"]);
    assert!(!out.status.success(), "{expected}: accepted");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(expected),
        "expected `{expected}` in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

const ENTRY: &str = r#"{"process_name":"app","process_wasm_path":"/app.wasm","on_exit":"None","request_networking":false,"request_capabilities":[],"grant_capabilities":[],"public":false}"#;

#[test]
fn bad_tests_files_manifests_and_packages_are_refused_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    package(&d.join("app"), "app", &format!("[{ENTRY}]"), &["app.wasm"]);
    let test_entry = ENTRY
        .replace("\"app\"", "\"app-test\"")
        .replace("/app.wasm", "/app-test.wasm");
    package(
        &d.join("app-test"),
        "app-test",
        &format!("[{test_entry}]"),
        &["app-test.wasm"],
    );
    // The network's faults on a group of one node.
    let faults = d.join("network.json");
    std::fs::write(&faults, r#"{"clog": {"per_second": 1, "mean_ms": 10}}"#).unwrap();
    let one = tests_toml(d, NODE);
    let out = sim(&[
        "test",
        one.to_str().unwrap(),
        "--no-build",
        "--faults",
        faults.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the network's faults (partitions, clogs, resets, crashes) need a group of several nodes"),
        "{}",
        text(&out.stderr)
    );
    // A faults file that is neither kind names both readings.
    std::fs::write(&faults, r#"{"typo": 1}"#).unwrap();
    let out = sim(&[
        "test",
        one.to_str().unwrap(),
        "--no-build",
        "--faults",
        faults.to_str().unwrap(),
    ]);
    assert!(
        text(&out.stderr).contains("neither a node's faults (1:"),
        "{}",
        text(&out.stderr)
    );
    // Two nodes of one name (kit would boot two homes as one node).
    let twice = format!("{NODE}{NODE}");
    refused(
        &tests_toml(d, &twice),
        "tests[0].nodes[1]: node fake.os is named twice",
    );
    refused(
        &tests_toml(d, ""),
        "tests[0].nodes: a group needs a [[tests.nodes]]",
    );
    // Scripts: a simulated node has no shell to run them in.
    let scripted = d.join("scripted.toml");
    let scripts = std::fs::read_to_string(tests_toml(d, NODE))
        .unwrap()
        .replace("[[tests]]\n", "[[tests]]\nsetup_scripts = [\"setup.sh\"]\n");
    std::fs::write(&scripted, scripts).unwrap();
    refused(
        &scripted,
        "tests[0].setup_scripts: scripts are not supported: a simulated node has no shell",
    );
    let toml = d.join("tests.toml");
    std::fs::write(&toml, "[[tests]]\ntimeout_secs = \"five\"\n").unwrap();
    refused(&toml, "tests.toml:2:");
    let tests = tests_toml(d, NODE);
    // A module the package does not hold: build it first.
    std::fs::remove_file(d.join("app/pkg/app.wasm")).unwrap();
    refused(
        &tests,
        "process_wasm_path: pkg/app.wasm does not exist (build the package first)",
    );
    std::fs::write(d.join("app/pkg/app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    // A manifest that is not JSON: the file, line and column.
    std::fs::write(
        d.join("app/pkg/manifest.json"),
        "[\n  {\"process_name\": }\n]",
    )
    .unwrap();
    refused(&tests, "manifest.json:2:");
    std::fs::write(d.join("app/pkg/manifest.json"), format!("[{ENTRY}]")).unwrap();
    // A test package has exactly one process.
    let two_entries = format!(
        "[{test_entry},{}]",
        test_entry.replace("\"app-test\"", "\"b\"")
    );
    std::fs::write(d.join("app-test/pkg/manifest.json"), two_entries).unwrap();
    refused(&tests, "a test package has exactly one process, not 2");
    std::fs::write(
        d.join("app-test/pkg/manifest.json"),
        format!("[{test_entry}]"),
    )
    .unwrap();
    // A test named like the tester would be the tester's own process.
    let named_tester = test_entry.replace("\"app-test\"", "\"tester\"");
    std::fs::write(
        d.join("app-test/pkg/manifest.json"),
        format!("[{named_tester}]"),
    )
    .unwrap();
    refused(&tests, "a test may not be named \"tester\"");
    std::fs::write(
        d.join("app-test/pkg/manifest.json"),
        format!("[{test_entry}]"),
    )
    .unwrap();
    // A module that is no real app: it does not load, and the install says which.
    refused(&tests, "app:app:t.os does not load");
    // Its test never ran: never a PASS (SECURITY.md, sim test).
    let out = sim(&[
        "test",
        tests.to_str().unwrap(),
        "--seeds",
        "0..3",
        "--no-build",
    ]);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("PASS"), "{stdout}");
    assert!(
        stdout.contains("FAIL app-test   did not run in 3 of 3 seeds"),
        "{stdout}"
    );
    // A module older than its crate's sources is named, with how to build it.
    let krate = d.join("app/app");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(krate.join("Cargo.toml"), "[package]\nname = \"app\"\n").unwrap();
    std::fs::write(krate.join("src/lib.rs"), "").unwrap();
    let out = sim(&["test", tests.to_str().unwrap(), "--seed", "1", "--no-build"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("app/pkg/app.wasm is older than its source")
            && stderr.contains("app/app/Cargo.toml"),
        "{stderr}"
    );
    // Without --no-build the package is built first, and a crate that builds no module (it is
    // no cdylib) says so.
    let out = sim(&["test", tests.to_str().unwrap(), "--seed", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("app/app/Cargo.toml: cargo built no .wasm module (a cdylib?)"),
        "{}",
        text(&out.stderr)
    );
}

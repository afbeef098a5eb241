//! kit's own build output under `sim test`: the example apps built as `sim build` builds them,
//! then wrapped exactly as `kit build` wraps them (`wasm-tools component new MODULE --adapt
//! wasi_snapshot_preview1.reactor.wasm`, the tool and the adapter at the versions kit pins, both
//! from crates.io), pass their kit tests over seeds as the modules do; the transfer app, whose
//! process is composed with its worker API as kit composes it, moves a file between two nodes
//! through spawned workers; a component of a shape the loader cannot run, and a process that
//! imports an interface nothing composed into it exports, are refused, naming the package's file
//! and the reason.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{sim, temp, text};
use std::path::{Path, PathBuf};
use std::process::Command;

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/apps")
}

/// The WASI adapter kit downloads (wasmtime 33.0.0's reactor adapter), written to a file.
fn adapter() -> PathBuf {
    let path = temp("wasi_snapshot_preview1.wasm");
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `wasm-tools component new MODULE -o MODULE --adapt ADAPTER`, as kit's build runs it.
fn componentize(module: &Path, adapter: &Path) {
    let out = Command::new("wasm-tools")
        .arg("component")
        .arg("new")
        .arg(module)
        .arg("-o")
        .arg(module)
        .arg("--adapt")
        .arg(adapter)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "wasm-tools is needed ({e}): cargo install wasm-tools --locked --version \
                 1.225.0 (the version kit's setup installs)"
            )
        });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(module).unwrap();
    assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "a component");
}

/// Copies what `sim test --no-build` reads of package `from` (metadata and pkg/) to `to`, and
/// wraps every module of it as kit does.
fn copy_package(from: &Path, to: &Path, adapter: &Path) {
    std::fs::create_dir_all(to.join("pkg")).unwrap();
    std::fs::copy(from.join("metadata.json"), to.join("metadata.json")).unwrap();
    for entry in std::fs::read_dir(from.join("pkg")).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join("pkg").join(path.file_name().unwrap());
        std::fs::copy(&path, &target).unwrap();
        if path.extension().is_some_and(|e| e == "wasm") {
            componentize(&target, adapter);
        }
    }
}

/// `sim test` of `tests` with `--no-build` over `seeds` under the example faults.
fn sim_test(tests: &Path, faults: &str, seeds: &str) -> std::process::Output {
    let faults = apps().join(faults);
    sim(&[
        "test",
        tests.to_str().unwrap(),
        "--no-build",
        "--seeds",
        seeds,
        "--faults",
        faults.to_str().unwrap(),
        "--jobs",
        "2",
    ])
}

#[test]
fn kits_components_pass_the_kit_tests_their_modules_pass() {
    let adapter = adapter();
    // Built as sim test builds them (the `test` feature), then wrapped.
    let chat = apps().join("chat");
    let counter = apps().join("counter");
    let packages = [
        chat.clone(),
        chat.join("test/chat-test"),
        counter.clone(),
        counter.join("test/counter-test"),
    ];
    let mut args = vec!["build", "--features", "test"];
    args.extend(packages.iter().map(|p| p.to_str().unwrap()));
    let built = sim(&args);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let root = temp("components");
    for (app, test) in [("chat", "chat-test"), ("counter", "counter-test")] {
        let from = apps().join(app);
        let to = root.join(app);
        copy_package(&from, &to, &adapter);
        copy_package(
            &from.join("test").join(test),
            &to.join("test").join(test),
            &adapter,
        );
        let tests = to.join("test/tests.toml");
        std::fs::copy(from.join("test/tests.toml"), &tests).unwrap();
        // The chat's group has two nodes (a world under clogs and delays), the counter's one.
        let out = sim_test(&tests, "faults.json", "0..16");
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{app}: {stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!("PASS {test}   16 seeds")),
            "{stdout}"
        );
    }
    let two = root.join("counter/test/two-nodes.toml");
    std::fs::copy(counter.join("test/two-nodes.toml"), &two).unwrap();
    let out = sim_test(&two, "network-faults.json", "0..16");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("PASS counter-test   16 seeds"), "{stdout}");
    // A component of a shape the loader cannot run: refused with the file and the reason.
    let strange = wat::parse_str(
        r#"(component (import "foo:bar/baz@1.0.0" (instance)) (core module (memory 1)))"#,
    )
    .unwrap();
    std::fs::write(root.join("chat/pkg/chat.wasm"), strange).unwrap();
    let tests = root.join("chat/test/tests.toml");
    let out = sim(&["test", tests.to_str().unwrap(), "--no-build", "--seed", "1"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "does not load (pkg/chat.wasm): the component imports `foo:bar/baz@1.0.0`; a process \
             component may import only `hyperware:process/standard@1.0.0` and `wasi:` interfaces"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_composed_process_runs_and_an_uncomposed_importer_is_refused() {
    // sim test builds the transfer app as kit does: its main process composed with the worker
    // API (`wasm-tools compose`), the API itself not shipped.
    let tests = apps().join("transfer/test/tests.toml");
    let faults = apps().join("clog-faults.json");
    let out = sim(&[
        "test",
        tests.to_str().unwrap(),
        "--seeds",
        "0..16",
        "--faults",
        faults.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("PASS transfer-test   16 seeds"), "{stdout}");
    let pkg = apps().join("transfer/pkg");
    assert!(pkg.join("transfer.wasm").exists() && pkg.join("transfer-worker.wasm").exists());
    assert!(
        !pkg.join("transfer-worker-api.wasm").exists(),
        "the API is composed, not shipped"
    );
    let composed = std::fs::read(pkg.join("transfer.wasm")).unwrap();
    assert_eq!(&composed[..8], b"\0asm\x0d\0\x01\0", "a component");
    // The main process as a module of its own (built directly, never composed): refused,
    // naming the import and how to compose it.
    let root = temp("uncomposed");
    let from = apps().join("transfer");
    for dir in ["", "test/transfer-test"] {
        let to = root.join("transfer").join(dir);
        std::fs::create_dir_all(to.join("pkg")).unwrap();
        for file in ["metadata.json", "pkg/manifest.json"] {
            std::fs::copy(from.join(dir).join(file), to.join(file)).unwrap();
        }
    }
    let release = apps().join("target/wasm32-wasip1/release");
    let copy = |module: &str, to: &str| {
        std::fs::copy(release.join(module), root.join("transfer").join(to)).unwrap();
    };
    copy("transfer.wasm", "pkg/transfer.wasm");
    copy("transfer_worker.wasm", "pkg/transfer-worker.wasm");
    copy(
        "transfer_test.wasm",
        "test/transfer-test/pkg/transfer-test.wasm",
    );
    let tests = root.join("transfer/test/tests.toml");
    std::fs::copy(from.join("test/tests.toml"), &tests).unwrap();
    let out = sim(&["test", tests.to_str().unwrap(), "--no-build", "--seed", "1"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "does not load (pkg/transfer.wasm): imports \
             `hyperware:process/transfer-worker@1.0.0::start-download`, an interface the kernel \
             does not provide: a process that imports another crate's interface runs composed \
             with it"
        ),
        "{stderr}"
    );
    // Wrapped as a component but not composed: refused the same way.
    componentize(&root.join("transfer/pkg/transfer.wasm"), &adapter());
    let out = sim(&["test", tests.to_str().unwrap(), "--no-build", "--seed", "1"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "does not load (pkg/transfer.wasm): the component imports \
             `hyperware:process/transfer-worker@1.0.0`"
        ) && stderr.contains("and others composed into it from the crate that exports them"),
        "{stderr}"
    );
}

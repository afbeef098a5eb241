//! Packages as an attacker crafts them: a package that claims the kernel's own publisher, and
//! package directories whose files are FIFOs, devices or far past the bound (SECURITY.md,
//! packages).

use crate::harness::{World, pid};
use hyperkernel::kernel::InstallError;
use hyperkernel::package::{ManifestEntry, PACKAGE_BYTES_MAX, Package, PackageError};
use hyperkernel::{OnExit, PackageId};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

fn package(package_name: &str, publisher: &str) -> Package {
    Package {
        id: PackageId {
            package_name: package_name.into(),
            publisher_node: publisher.into(),
        },
        wit_version: Some(1),
        entries: vec![ManifestEntry {
            process_name: "vfs".into(),
            process_wasm_path: "echo.wasm".into(),
            on_exit: OnExit::None,
            request_networking: false,
            request_capabilities: vec![],
            grant_capabilities: vec![],
            public: false,
        }],
        files: vec![("echo.wasm".into(), b"echo".to_vec())],
    }
}

#[test]
fn a_package_may_not_install_processes_under_the_kernels_own_publisher() {
    let mut world = World::new(1);
    // `InitializeProcess` refuses `distro:sys`; so does every other way a process is made.
    let error = world
        .kernel
        .harness()
        .install_package(&package("distro", "sys"), true)
        .unwrap_err();
    let InstallError::BadName { reason, .. } = &error else {
        panic!("{error}");
    };
    assert!(reason.contains("distro:sys"), "{reason}");
    assert!(
        !world.kernel.has_process(&pid("vfs:distro:sys")),
        "nothing was installed"
    );
    let stored = world
        .kernel
        .storage()
        .scan(hyperkernel::Table::Vfs, b"/distro:sys/");
    assert!(stored.unwrap().is_empty(), "no file of it was written");
    // An ordinary package installs.
    let ids = world
        .kernel
        .harness()
        .install_package(&package("app", "our.os"), true)
        .unwrap();
    assert_eq!(ids, vec![pid("vfs:app:our.os")]);
    world.kernel.check_invariants().unwrap();
}

/// A package directory with `metadata.json` and `pkg/manifest.json`.
fn package_dir(root: &Path) {
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(
        root.join("metadata.json"),
        r#"{"properties":{"package_name":"app","publisher":"our.os"}}"#,
    )
    .unwrap();
    std::fs::write(root.join("pkg/manifest.json"), "[]").unwrap();
}

/// `Package::read` on another thread, so a read that hangs fails the test instead.
fn read_in_time(dir: &Path) -> Result<Package, PackageError> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_owned();
    #[expect(
        clippy::disallowed_methods,
        reason = "a hang must fail the test, not stall it"
    )]
    std::thread::spawn(move || {
        let _ = tx.send(Package::read(&dir));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("Package::read hung")
}

#[test]
fn package_files_that_are_fifos_devices_or_too_large_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fifo");
    package_dir(&root);
    std::fs::remove_file(root.join("metadata.json")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("metadata.json"))
        .status();
    assert!(made.unwrap().success());
    let error = read_in_time(&root).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");

    let root = dir.path().join("device");
    package_dir(&root);
    std::fs::remove_file(root.join("pkg/manifest.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("pkg/manifest.json")).unwrap();
    let error = read_in_time(&root).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");

    // A sparse file past the bound: refused by its length, never read (3 GiB would take
    // seconds and all of that memory).
    let root = dir.path().join("huge");
    package_dir(&root);
    let huge = std::fs::File::create(root.join("pkg/huge.bin")).unwrap();
    huge.set_len(PACKAGE_BYTES_MAX + 1).unwrap();
    let error = read_in_time(&root).unwrap_err();
    assert!(matches!(error, PackageError::TooLarge { .. }), "{error}");

    // The same directory with the file within the bound reads.
    huge.set_len(16).unwrap();
    let read = read_in_time(&root).unwrap();
    assert_eq!(read.files[0], ("huge.bin".to_owned(), vec![0; 16]));
}

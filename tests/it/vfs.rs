//! `vfs:distro:sys` as its clients see it: the reference's request and response JSON, files
//! in the kernel's store, drives and their capabilities, bad paths and bodies.

use crate::harness::{World, messaging, pid};
use hyperkernel::{KernelConfig, LazyLoadBlob, ProcessId, Request, Table, WasmConfig};
use serde_json::{Value, json};

const VFS: &str = "our.os@vfs:distro:sys";

fn world() -> World {
    let mut config = KernelConfig::new(crate::harness::OUR, 1);
    config.vfs = true;
    World::with_configs(config, WasmConfig::default())
}

fn register(world: &mut World, id: &ProcessId) {
    world
        .kernel
        .register_driven(id, &[messaging("vfs:distro:sys")], false)
        .unwrap();
}

/// Sends `{path, action}` (with `blob`) from `from` to the vfs; returns the response body and
/// the blob it came with.
fn vfs(
    world: &mut World,
    from: &ProcessId,
    path: &str,
    action: Value,
    blob: Option<&[u8]>,
) -> (Value, Option<Vec<u8>>) {
    let body = json!({"path": path, "action": action}).to_string();
    send_raw(world, from, &body, blob)
}

fn send_raw(
    world: &mut World,
    from: &ProcessId,
    body: &str,
    blob: Option<&[u8]>,
) -> (Value, Option<Vec<u8>>) {
    let blob = blob.map(|bytes| LazyLoadBlob {
        mime: None,
        bytes: bytes.to_vec(),
    });
    let request = Request::new(body).expecting(5);
    world
        .kernel
        .send_as(from, VFS.parse().unwrap(), request, None, blob)
        .unwrap();
    world.kernel.run_until_idle();
    let received = world.received(from);
    assert_eq!(received.len(), 1, "{body}: {received:#?}");
    let blob = world.kernel.last_blob_of(from).map(|b| b.bytes);
    (received[0]["body"].clone(), blob)
}

fn setup() -> (World, ProcessId, ProcessId) {
    let mut world = world();
    let (a, b) = (pid("a:app:our.os"), pid("b:other:our.os"));
    register(&mut world, &a);
    register(&mut world, &b);
    (world, a, b)
}

#[test]
fn a_package_creates_its_drive_writes_and_reads_its_files() {
    let (mut world, a, _) = setup();
    let drive = "/app:our.os/data";
    assert_eq!(
        vfs(&mut world, &a, drive, json!("CreateDrive"), None).0,
        json!("Ok")
    );
    let caps: Vec<String> = world
        .kernel
        .capabilities_of(&a)
        .iter()
        .map(|c| c.params.clone())
        .collect();
    assert!(
        caps.contains(&r#"{"drive":"/app:our.os/data","kind":"read"}"#.to_owned()),
        "{caps:?}"
    );
    assert!(
        caps.contains(&r#"{"drive":"/app:our.os/data","kind":"write"}"#.to_owned()),
        "{caps:?}"
    );
    let file = "/app:our.os/data/notes.txt";
    assert_eq!(
        vfs(&mut world, &a, file, json!("Write"), Some(b"hello")).0,
        json!("Ok")
    );
    let (body, blob) = vfs(&mut world, &a, file, json!("Read"), None);
    assert_eq!(body, json!("Read"));
    assert_eq!(blob.as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        vfs(&mut world, &a, file, json!("Metadata"), None).0,
        json!({"Metadata": {"file_type": "File", "len": 5}})
    );
    assert_eq!(
        vfs(&mut world, &a, file, json!("Len"), None).0,
        json!({"Len": 5})
    );
    // The file is in the store, committed with the step that wrote it.
    let stored = world
        .kernel
        .storage()
        .get(Table::Vfs, file.as_bytes())
        .unwrap();
    assert_eq!(stored.as_deref(), Some(&b"hello"[..]));
}

#[test]
fn open_files_keep_a_cursor_for_appends_seeks_and_partial_reads() {
    let (mut world, a, _) = setup();
    let file = "/app:our.os/data/log";
    vfs(
        &mut world,
        &a,
        "/app:our.os/data",
        json!("CreateDrive"),
        None,
    );
    let missing = vfs(
        &mut world,
        &a,
        file,
        json!({"OpenFile": {"create": false}}),
        None,
    )
    .0;
    assert!(
        missing["Err"]["IOError"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{missing}"
    );
    assert_eq!(
        vfs(
            &mut world,
            &a,
            file,
            json!({"OpenFile": {"create": true}}),
            None
        )
        .0,
        json!("Ok")
    );
    vfs(&mut world, &a, file, json!("Append"), Some(b"one "));
    vfs(&mut world, &a, file, json!("Append"), Some(b"two"));
    assert_eq!(
        vfs(&mut world, &a, file, json!({"Seek": {"Start": 4}}), None).0,
        json!({"SeekFrom": {"new_offset": 4}})
    );
    assert_eq!(
        vfs(&mut world, &a, file, json!("ReadToString"), None).0,
        json!({"ReadToString": "two"})
    );
    vfs(&mut world, &a, file, json!({"Seek": {"End": -7}}), None);
    let (_, blob) = vfs(
        &mut world,
        &a,
        file,
        json!({"ReadExact": {"length": 3}}),
        None,
    );
    assert_eq!(blob.as_deref(), Some(&b"one"[..]));
    let short = vfs(
        &mut world,
        &a,
        file,
        json!({"ReadExact": {"length": 99}}),
        None,
    )
    .0;
    assert_eq!(
        short,
        json!({"Err": {"IOError": "failed to fill whole buffer"}})
    );
    let negative = vfs(
        &mut world,
        &a,
        file,
        json!({"Seek": {"Current": -100}}),
        None,
    )
    .0;
    assert!(negative["Err"]["IOError"].is_string(), "{negative}");
    vfs(&mut world, &a, file, json!({"Seek": {"Start": 0}}), None);
    vfs(&mut world, &a, file, json!("WriteAll"), Some(b"ONE"));
    let (_, blob) = vfs(&mut world, &a, file, json!("Read"), None);
    assert_eq!(blob.as_deref(), Some(&b"ONE two"[..]));
    vfs(&mut world, &a, file, json!({"SetLen": 3}), None);
    assert_eq!(
        vfs(&mut world, &a, file, json!("Len"), None).0,
        json!({"Len": 3})
    );
    assert_eq!(
        vfs(&mut world, &a, file, json!("CloseFile"), None).0,
        json!("Ok")
    );
}

#[test]
fn directories_list_move_copy_and_remove() {
    let (mut world, a, _) = setup();
    vfs(
        &mut world,
        &a,
        "/app:our.os/data",
        json!("CreateDrive"),
        None,
    );
    assert_eq!(
        vfs(
            &mut world,
            &a,
            "/app:our.os/data/d",
            json!("CreateDir"),
            None
        )
        .0,
        json!("Ok")
    );
    let again = vfs(
        &mut world,
        &a,
        "/app:our.os/data/d",
        json!("CreateDir"),
        None,
    )
    .0;
    assert_eq!(again, json!({"Err": {"IOError": "File exists"}}));
    let orphan = vfs(
        &mut world,
        &a,
        "/app:our.os/data/x/y",
        json!("CreateDir"),
        None,
    )
    .0;
    assert!(orphan["Err"]["IOError"].is_string(), "no parent: {orphan}");
    vfs(
        &mut world,
        &a,
        "/app:our.os/data/x/y/z",
        json!("CreateDirAll"),
        None,
    );
    vfs(
        &mut world,
        &a,
        "/app:our.os/data/d/f",
        json!("Write"),
        Some(b"1"),
    );
    vfs(
        &mut world,
        &a,
        "/app:our.os/data/top",
        json!("Write"),
        Some(b"22"),
    );
    assert_eq!(
        vfs(&mut world, &a, "/app:our.os/data", json!("ReadDir"), None).0,
        json!({"ReadDir": [
            {"path": "app:our.os/data/d", "file_type": "Directory"},
            {"path": "app:our.os/data/top", "file_type": "File"},
            {"path": "app:our.os/data/x", "file_type": "Directory"},
        ]})
    );
    let full = vfs(
        &mut world,
        &a,
        "/app:our.os/data/d",
        json!("RemoveDir"),
        None,
    )
    .0;
    assert_eq!(full, json!({"Err": {"IOError": "Directory not empty"}}));
    let copy = json!({"CopyFile": {"new_path": "/app:our.os/data/d/g"}});
    assert_eq!(
        vfs(&mut world, &a, "/app:our.os/data/top", copy, None).0,
        json!("Ok")
    );
    let rename = json!({"Rename": {"new_path": "/app:our.os/data/e"}});
    assert_eq!(
        vfs(&mut world, &a, "/app:our.os/data/d", rename, None).0,
        json!("Ok")
    );
    let (_, blob) = vfs(&mut world, &a, "/app:our.os/data/e/g", json!("Read"), None);
    assert_eq!(blob.as_deref(), Some(&b"22"[..]));
    let gone = vfs(&mut world, &a, "/app:our.os/data/d/f", json!("Read"), None).0;
    assert!(gone["Err"]["IOError"].is_string(), "{gone}");
    assert_eq!(
        vfs(
            &mut world,
            &a,
            "/app:our.os/data/e/f",
            json!("RemoveFile"),
            None
        )
        .0,
        json!("Ok")
    );
    assert_eq!(
        vfs(
            &mut world,
            &a,
            "/app:our.os/data/e",
            json!("RemoveDirAll"),
            None
        )
        .0,
        json!("Ok")
    );
    assert_eq!(
        vfs(
            &mut world,
            &a,
            "/app:our.os/data/e",
            json!("Metadata"),
            None
        )
        .0["Err"]["IOError"]
            .as_str()
            .map(|t| t.starts_with("No such file")),
        Some(true)
    );
    let hash = vfs(&mut world, &a, "/app:our.os/data/top", json!("Hash"), None).0;
    assert_eq!(hash["Hash"].as_array().map(Vec::len), Some(32));
}

#[test]
fn another_packages_drive_needs_the_drives_capabilities() {
    let (mut world, a, b) = setup();
    vfs(
        &mut world,
        &a,
        "/app:our.os/data",
        json!("CreateDrive"),
        None,
    );
    vfs(
        &mut world,
        &a,
        "/app:our.os/data/secret",
        json!("Write"),
        Some(b"s"),
    );
    let file = "/app:our.os/data/secret";
    assert_eq!(
        vfs(&mut world, &b, file, json!("Read"), None).0,
        json!({"Err": "NoReadCap"})
    );
    assert_eq!(
        vfs(&mut world, &b, file, json!("Write"), Some(b"x")).0,
        json!({"Err": "NoWriteCap"})
    );
    let drive = vfs(
        &mut world,
        &b,
        "/app:our.os/other",
        json!("CreateDrive"),
        None,
    )
    .0;
    assert_eq!(drive, json!({"Err": "NoWriteCap"}));
    let climb = "/other:our.os/pkg/../../app:our.os/data/secret";
    assert_eq!(
        vfs(&mut world, &b, climb, json!("Read"), None).0,
        json!({"Err": "NoReadCap"})
    );
    assert_eq!(
        vfs(&mut world, &b, "/", json!("ReadDir"), None).0,
        json!({"Err": "NoReadCap"}),
        "listing the drives needs root"
    );
    // The owner's read capability, given by the kernel, lets it read and not write.
    let read = hyperkernel::Capability::new(
        VFS.parse().unwrap(),
        r#"{"kind":"read","drive":"/app:our.os/data"}"#,
    );
    let grant = hyperkernel::KernelCommand::GrantCapabilities {
        target: b.clone(),
        capabilities: vec![read],
    };
    world.command(&grant, None);
    let (body, blob) = vfs(&mut world, &b, file, json!("Read"), None);
    assert_eq!((body, blob.as_deref()), (json!("Read"), Some(&b"s"[..])));
    assert_eq!(
        vfs(&mut world, &b, file, json!("Write"), Some(b"x")).0,
        json!({"Err": "NoWriteCap"})
    );
}

#[test]
fn malformed_bodies_and_paths_are_the_references_errors_and_the_vfs_goes_on() {
    let (mut world, a, _) = setup();
    assert_eq!(
        send_raw(&mut world, &a, "not json", None).0,
        json!({"Err": "MalformedRequest"})
    );
    let unknown = r#"{"path":"/app:our.os/d","action":"Explode"}"#;
    assert_eq!(
        send_raw(&mut world, &a, unknown, None).0,
        json!({"Err": "MalformedRequest"})
    );
    for path in [
        "/../../etc/passwd",
        "/app:our.os",
        "/no-colon/drive/file",
        "",
    ] {
        let body = vfs(&mut world, &a, path, json!("Read"), None).0;
        assert_eq!(body, json!({"Err": "MalformedRequest"}), "{path}");
    }
    let no_blob = vfs(&mut world, &a, "/app:our.os/d/f", json!("Write"), None).0;
    assert_eq!(no_blob, json!({"Err": "NoBlob"}));
    let zip = vfs(
        &mut world,
        &a,
        "/app:our.os/d",
        json!("AddZip"),
        Some(b"PK"),
    );
    assert!(zip.0["Err"]["IOError"].is_string());
    assert_eq!(
        vfs(&mut world, &a, "/app:our.os/d", json!("CreateDrive"), None).0,
        json!("Ok")
    );
    world.kernel.check_invariants().unwrap();
}

#[test]
fn a_file_past_the_size_bound_is_refused() {
    let (mut world, a, _) = setup();
    vfs(&mut world, &a, "/app:our.os/d", json!("CreateDrive"), None);
    let file = "/app:our.os/d/big";
    vfs(&mut world, &a, file, json!("Write"), Some(b"x"));
    let huge = hyperkernel::process::vfs::FILE_LEN_MAX + 1;
    let body = vfs(&mut world, &a, file, json!({"SetLen": huge}), None).0;
    assert!(
        body["Err"]["IOError"]
            .as_str()
            .unwrap()
            .contains("File too large"),
        "{body}"
    );
    assert_eq!(
        vfs(&mut world, &a, file, json!("Len"), None).0,
        json!({"Len": 1})
    );
}

#[test]
fn the_vfs_is_registered_only_when_asked_for() {
    let plain = World::new(1);
    assert!(!plain.kernel.has_process(&pid("vfs:distro:sys")));
    let (world, _, _) = setup();
    assert!(world.kernel.has_process(&pid("vfs:distro:sys")));
    world.kernel.check_invariants().unwrap();
}

//! Property: the vfs's capability rules and file contents match a model. Two packages each
//! own a drive; random sequences of reads, writes, removals, listings and grants of the other
//! drive's read or write capability run against the kernel. A request on one's own drive is
//! always allowed; on the other's, a read needs its read capability and a write its write
//! capability, exactly; every file read back holds what the model says; the kernel's
//! invariants hold after every request. Failures are persisted under `proptest-regressions/`.

use crate::harness::{OUR, World, messaging, pid};
use hyperkernel::{Capability, KernelCommand, KernelConfig, LazyLoadBlob, Request, WasmConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const CLIENTS: [&str; 2] = ["a:app:our.os", "b:other:our.os"];
const DRIVES: [&str; 2] = ["/app:our.os/data", "/other:our.os/data"];
const FILES: [&str; 3] = ["x", "y", "z"];

/// One step of a run.
#[derive(Clone, Debug)]
enum Op {
    /// Client `who` does `action` on file `file` of drive `drive`.
    Act {
        who: usize,
        drive: usize,
        file: usize,
        action: Action,
    },
    /// The kernel gives client `who` the other drive's read (or write) capability.
    Grant { who: usize, write: bool },
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Write(u8),
    Read,
    Remove,
    Metadata,
    List,
}

impl Action {
    fn is_write(self) -> bool {
        matches!(self, Self::Write(_) | Self::Remove)
    }
}

fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![
        any::<u8>().prop_map(Action::Write),
        Just(Action::Read),
        Just(Action::Remove),
        Just(Action::Metadata),
        Just(Action::List),
    ];
    prop_oneof![
        4 => (0..2usize, 0..2usize, 0..3usize, action)
            .prop_map(|(who, drive, file, action)| Op::Act { who, drive, file, action }),
        1 => (0..2usize, any::<bool>()).prop_map(|(who, write)| Op::Grant { who, write }),
    ]
}

/// The model: capabilities each client holds on the other's drive, and every file.
#[derive(Default)]
struct Model {
    /// (client, "read" | "write") granted on the other client's drive.
    granted: BTreeSet<(usize, &'static str)>,
    files: BTreeMap<(usize, usize), u8>,
}

impl Model {
    fn allowed(&self, who: usize, drive: usize, action: Action) -> bool {
        let kind = if action.is_write() { "write" } else { "read" };
        who == drive || self.granted.contains(&(who, kind))
    }

    /// The answer the vfs must give.
    fn expected(&mut self, who: usize, drive: usize, file: usize, action: Action) -> Value {
        if !self.allowed(who, drive, action) {
            return json!({"Err": if action.is_write() { "NoWriteCap" } else { "NoReadCap" }});
        }
        let present = self.files.get(&(drive, file)).copied();
        match (action, present) {
            (Action::Write(byte), _) => {
                self.files.insert((drive, file), byte);
                json!("Ok")
            }
            (Action::Read, Some(_)) => json!("Read"),
            (Action::Remove, Some(_)) => {
                self.files.remove(&(drive, file));
                json!("Ok")
            }
            (Action::Metadata, Some(_)) => json!({"Metadata": {"file_type": "File", "len": 1}}),
            (Action::List, _) => {
                let names: Vec<Value> = FILES
                    .iter()
                    .enumerate()
                    .filter(|(f, _)| self.files.contains_key(&(drive, *f)))
                    .map(|(_, name)| {
                        let path = format!("{}/{name}", &DRIVES[drive][1..]);
                        json!({"path": path, "file_type": "File"})
                    })
                    .collect();
                json!({"ReadDir": names})
            }
            (_, None) => json!("missing"),
        }
    }
}

fn world() -> World {
    let mut config = KernelConfig::new(OUR, 1);
    config.vfs = true;
    let mut world = World::with_configs(config, WasmConfig::default());
    for (client, drive) in CLIENTS.iter().zip(DRIVES) {
        let id = pid(client);
        world
            .kernel
            .harness()
            .register_driven(&id, &[messaging("vfs:distro:sys")], false)
            .unwrap();
        let (body, _) = ask(&mut world, client, drive, json!("CreateDrive"), None);
        assert_eq!(body, json!("Ok"));
    }
    world
}

fn ask(
    world: &mut World,
    client: &str,
    path: &str,
    action: Value,
    blob: Option<u8>,
) -> (Value, Option<Vec<u8>>) {
    let from = pid(client);
    let body = json!({"path": path, "action": action}).to_string();
    let blob = blob.map(|b| LazyLoadBlob {
        mime: None,
        bytes: vec![b],
    });
    let target = format!("{OUR}@vfs:distro:sys").parse().unwrap();
    let request = Request::new(body).expecting(5);
    world
        .kernel
        .harness()
        .send_as(&from, target, request, None, blob)
        .unwrap();
    world.kernel.harness().run_until_idle();
    let received = world.received(&from);
    assert_eq!(received.len(), 1, "{received:#?}");
    let blob = world.kernel.last_blob_of(&from).map(|b| b.bytes);
    (received[0]["body"].clone(), blob)
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut world = world();
    let mut model = Model::default();
    for op in ops {
        match *op {
            Op::Grant { who, write } => {
                let kind = if write { "write" } else { "read" };
                let params = json!({"kind": kind, "drive": DRIVES[1 - who]}).to_string();
                let issuer = format!("{OUR}@vfs:distro:sys").parse().unwrap();
                let grant = KernelCommand::GrantCapabilities {
                    target: pid(CLIENTS[who]),
                    capabilities: vec![Capability::new(issuer, params)],
                };
                world.command(&grant, None);
                model.granted.insert((who, kind));
            }
            Op::Act {
                who,
                drive,
                file,
                action,
            } => {
                let path = format!("{}/{}", DRIVES[drive], FILES[file]);
                let (request, blob) = match action {
                    Action::Write(byte) => (json!("Write"), Some(byte)),
                    Action::Read => (json!("Read"), None),
                    Action::Remove => (json!("RemoveFile"), None),
                    Action::Metadata => (json!("Metadata"), None),
                    Action::List => (json!("ReadDir"), None),
                };
                let path = if matches!(action, Action::List) {
                    DRIVES[drive].to_owned()
                } else {
                    path
                };
                let expected = model.expected(who, drive, file, action);
                let (body, got) = ask(&mut world, CLIENTS[who], &path, request, blob);
                if expected == json!("missing") {
                    prop_assert!(body["Err"]["IOError"].is_string(), "{op:?}: {body}");
                } else {
                    prop_assert_eq!(&body, &expected, "{:?}", op);
                }
                if matches!(action, Action::Read) && body == json!("Read") {
                    let byte = model.files.get(&(drive, file)).copied();
                    prop_assert_eq!(got, byte.map(|b| vec![b]), "{:?}", op);
                }
            }
        }
        world
            .kernel
            .check_invariants()
            .map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/vfs_model.txt"),
        ))),
        .. Config::default()
    })]
    #[test]
    fn vfs_capability_rules_and_contents_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}

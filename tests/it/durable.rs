//! The durable kernel: one commit per step, boot from the store with everything as it was
//! after the last committed step, fail-stop on a failed commit or read, and a clear boot error
//! (with nothing written) for every kind of bad store.

use crate::harness::{OUR, World, addr, messaging};
use hyperkernel::trace::Event;
use hyperkernel::{
    Batch, BootError, Capability, Corruption, KernelCommand, KernelConfig, KernelError,
    KernelFailure, MemStorage, OnExit, ProcessId, RedbStorage, Request, SharedStorage, Step,
    Storage, StorageError, Table, WasmConfig,
};
use serde_json::{Value, json};
use std::cell::Cell;
use std::rc::Rc;

type Shared = SharedStorage<MemStorage>;

fn boot(store: &Shared, seed: u64) -> Result<World, BootError> {
    let config = KernelConfig::new(OUR, seed);
    World::on_store(config, WasmConfig::default(), Box::new(store.clone()))
}

/// Sends `body` to `process` from the client, runs until idle, returns the reply bodies.
fn ask(world: &mut World, process: &ProcessId, body: &str) -> Vec<Value> {
    let target = addr(&format!("{OUR}@{process}"));
    let request = Request::new(body).expecting(5);
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(&client, target, request, None, None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    world
        .replies()
        .into_iter()
        .map(|r| r["body"].clone())
        .collect()
}

fn state_of(store: &Shared, process: &ProcessId) -> Option<String> {
    store
        .with(|s| s.get(Table::State, process.as_str().as_bytes()))
        .unwrap()
        .map(|bytes| String::from_utf8(bytes).unwrap())
}

fn started(world: &World, process: &ProcessId) -> usize {
    let records = world.kernel.trace().records();
    records
        .iter()
        .filter(|r| matches!(&r.event, Event::Started { process: p } if p == process))
        .count()
}

/// Spawns `name` running native `code` whose on-exit sends a request to the counter.
fn spawn_notifying_counter(world: &mut World, name: &str, code: &str) -> ProcessId {
    let notify = vec![(
        addr(&format!("{OUR}@counter:test:our.os")),
        Request::new("from-on-exit"),
        None,
    )];
    world.spawn(
        name,
        code,
        OnExit::Requests(notify),
        vec![messaging("counter:test:our.os")],
        false,
    )
}

#[test]
fn a_node_boots_from_its_store_with_processes_capabilities_code_and_state() {
    let store = Shared::new(MemStorage::new());
    let mut world = boot(&store, 3).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    let notifier = spawn_notifying_counter(&mut world, "notifier", "echo");
    let transient = world.spawn("transient", "echo", OnExit::None, vec![], true);
    world.command(
        &KernelCommand::GrantCapabilities {
            target: counter.clone(),
            capabilities: vec![Capability::network(OUR)],
        },
        None,
    );
    for expected in [1, 2, 3] {
        assert_eq!(ask(&mut world, &counter, "count"), vec![json!(expected)]);
    }
    let before = world.kernel.persisted_map();
    assert_eq!(
        world.kernel.stored_map().unwrap(),
        before,
        "committed as it is"
    );
    drop(world);

    let mut world = boot(&store, 99).unwrap();
    assert_eq!(
        world.kernel.persisted_map(),
        before,
        "restored as committed"
    );
    world.kernel.harness().run_until_idle();
    assert_eq!(started(&world, &counter), 1, "Booted starts it once");
    assert!(world.kernel.has_process(&notifier));
    assert!(
        !world.kernel.has_process(&transient),
        "OnExit::None is not kept"
    );
    assert_eq!(
        ask(&mut world, &counter, "count"),
        vec![json!(4)],
        "its state survived, and the on-exit requests of the running notifier were not fired (W21)"
    );
    assert!(
        world.kernel.capabilities().has_network(&counter),
        "its granted capability survived"
    );
    world.kernel.check_invariants().unwrap();
    world.kernel.capabilities().verify_signatures().unwrap();
}

#[test]
fn an_exited_processs_on_exit_requests_fire_once_and_never_again_at_boot() {
    let store = Shared::new(MemStorage::new());
    let mut world = boot(&store, 4).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    let quitter = spawn_notifying_counter(&mut world, "quitter", "returner");
    world.kernel.harness().run_until_idle();
    assert!(!world.kernel.has_process(&quitter), "it exited");
    assert_eq!(
        state_of(&store, &counter).as_deref(),
        Some("1"),
        "fired once"
    );
    assert!(!world.kernel.stored_map().unwrap().contains_key(&quitter));
    drop(world);
    let mut world = boot(&store, 4).unwrap();
    world.kernel.harness().run_until_idle();
    assert_eq!(
        ask(&mut world, &counter, "count"),
        vec![json!(2)],
        "not again"
    );
}

#[test]
fn code_is_stored_once_per_module_and_removed_with_its_last_user() {
    let store = Shared::new(MemStorage::new());
    let mut world = boot(&store, 5).unwrap();
    let code_entries = || store.with(|s| s.scan(Table::Code, b"").unwrap().len());
    let ids: Vec<ProcessId> = (0..20)
        .map(|i| world.spawn(&format!("e{i}"), "echo", OnExit::Restart, vec![], false))
        .collect();
    world.spawn("c", "counter", OnExit::Restart, vec![], false);
    assert_eq!(code_entries(), 2, "two modules, stored once each");
    for id in &ids[1..] {
        world.command(&KernelCommand::KillProcess(id.clone()), None);
    }
    assert_eq!(code_entries(), 2, "one user keeps it");
    world.command(&KernelCommand::KillProcess(ids[0].clone()), None);
    assert_eq!(code_entries(), 1, "the last user's kill removes it");
    world.kernel.check_invariants().unwrap();
}

#[test]
fn each_step_commits_once_and_only_when_it_wrote() {
    let store = Shared::new(MemStorage::new());
    let mut world = boot(&store, 6).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    let echo = world.spawn("echo", "echo", OnExit::Restart, vec![], true);
    let commits = || store.with(|s| s.commits());
    let before = commits();
    assert_eq!(ask(&mut world, &echo, "x"), vec![json!("x")]);
    assert_eq!(commits(), before, "an echo writes nothing");
    let target = addr(&format!("{OUR}@{counter}"));
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(&client, target, Request::new("c").expecting(5), None, None)
        .unwrap();
    let mut steps = Vec::new();
    loop {
        let step = world.kernel.harness().step();
        if matches!(step, Step::Idle(_)) {
            break;
        }
        steps.push((step, commits()));
    }
    let ran = steps
        .iter()
        .position(|(step, _)| *step == Step::Ran(counter.clone()))
        .unwrap();
    assert_eq!(steps[ran].1, before + 1, "the counter's step is one commit");
    assert_eq!(
        steps.last().unwrap().1,
        before + 1,
        "and no other step wrote"
    );
    assert_eq!(state_of(&store, &counter).as_deref(), Some("1"));
    assert_eq!(
        world.kernel.commits().0,
        world.kernel.commits().1,
        "all synced"
    );
}

/// A store whose commits, syncs or reads of one table fail on demand.
#[derive(Clone)]
struct Failing {
    inner: Shared,
    commit: Rc<Cell<bool>>,
    sync: Rc<Cell<bool>>,
    read: Rc<Cell<Option<Table>>>,
}

#[derive(Debug)]
struct Injected;

impl std::fmt::Display for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected failure")
    }
}

impl std::error::Error for Injected {}

impl Storage for Failing {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if self.read.get() == Some(table) {
            let op = hyperkernel::storage::Operation::Read;
            return Err(StorageError::backend(op, Some(table), Injected));
        }
        self.inner.get(table, key)
    }

    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> Result<hyperkernel::storage::Entries, StorageError> {
        self.inner.scan(table, prefix)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError> {
        if self.commit.get() {
            let op = hyperkernel::storage::Operation::Commit;
            return Err(StorageError::backend(op, None, Injected));
        }
        self.inner.commit(batch)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        if self.sync.get() {
            let op = hyperkernel::storage::Operation::Sync;
            return Err(StorageError::backend(op, None, Injected));
        }
        self.inner.sync()
    }
}

fn failing_world(seed: u64) -> (World, Failing, ProcessId) {
    let failing = Failing {
        inner: Shared::new(MemStorage::new()),
        commit: Rc::default(),
        sync: Rc::default(),
        read: Rc::default(),
    };
    let config = KernelConfig::new(OUR, seed);
    let mut world =
        World::on_store(config, WasmConfig::default(), Box::new(failing.clone())).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    assert_eq!(ask(&mut world, &counter, "count"), vec![json!(1)]);
    (world, failing, counter)
}

/// Sends one count request and runs until the kernel stops or idles.
fn count_until_stopped(world: &mut World, counter: &ProcessId) -> Step {
    let target = addr(&format!("{OUR}@{counter}"));
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(&client, target, Request::new("c").expecting(5), None, None)
        .unwrap();
    world.kernel.harness().run_until_idle()
}

#[test]
fn a_failed_commit_stops_the_kernel_and_nothing_of_the_step_leaves_it() {
    let (mut world, failing, counter) = failing_world(7);
    failing.commit.set(true);
    assert_eq!(count_until_stopped(&mut world, &counter), Step::Failed);
    let failure = world.kernel.failure().cloned().unwrap();
    assert!(matches!(failure, KernelFailure::Commit(_)), "{failure}");
    assert!(
        failure.to_string().contains("injected failure"),
        "{failure}"
    );
    assert_eq!(
        world
            .kernel
            .harness()
            .receive_as(&world.client.clone())
            .unwrap_err(),
        KernelError::Stopped,
        "the answer of the failed step is not let out"
    );
    assert_eq!(state_of(&failing.inner, &counter).as_deref(), Some("1"));
    assert_eq!(
        world.kernel.harness().step(),
        Step::Failed,
        "it stays stopped"
    );
    assert!(world.kernel.take_outbound().is_none());
    let trace = world.kernel.trace().records();
    assert!(
        trace
            .iter()
            .any(|r| matches!(&r.event, Event::StorageFailed { .. })),
        "the failure is traced"
    );
    drop(world);
    failing.commit.set(false);
    let mut world = boot(&failing.inner, 7).unwrap();
    world.kernel.harness().run_until_idle();
    assert_eq!(
        ask(&mut world, &counter, "c"),
        vec![json!(2)],
        "as committed"
    );
}

#[test]
fn a_failed_sync_stops_the_kernel() {
    let (mut world, failing, counter) = failing_world(8);
    failing.sync.set(true);
    assert_eq!(count_until_stopped(&mut world, &counter), Step::Failed);
    let failure = world.kernel.failure().unwrap();
    assert!(matches!(failure, KernelFailure::Sync(_)), "{failure}");
    let message = hyperkernel_message(&world);
    assert_eq!(
        world.kernel.harness().submit_local(message).unwrap_err(),
        KernelError::Stopped
    );
}

fn hyperkernel_message(world: &World) -> hyperkernel::KernelMessage {
    hyperkernel::KernelMessage {
        id: 1,
        source: addr(&format!("{OUR}@{}", world.client)),
        target: addr(&format!("{OUR}@kernel:distro:sys")),
        rsvp: None,
        message: hyperkernel::Message::Request(Request::new("{}")),
        lazy_load_blob: None,
    }
}

#[test]
fn a_failed_state_read_stops_the_kernel_instead_of_reading_as_no_state() {
    let (mut world, failing, counter) = failing_world(9);
    failing.read.set(Some(Table::State));
    assert_eq!(count_until_stopped(&mut world, &counter), Step::Failed);
    let failure = world.kernel.failure().unwrap();
    assert!(matches!(failure, KernelFailure::Read(_)), "{failure}");
    failing.read.set(None);
    assert_eq!(
        state_of(&failing.inner, &counter).as_deref(),
        Some("1"),
        "never restarted from zero"
    );
}

/// A store holding a node with a counter that counted once, and the counter's id.
fn stored_node() -> (Shared, ProcessId) {
    let store = Shared::new(MemStorage::new());
    let mut world = boot(&store, 10).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    assert_eq!(ask(&mut world, &counter, "c"), vec![json!(1)]);
    (store, counter)
}

/// Boots on a copy of `store` after `damage`; returns the error and checks nothing was
/// written.
fn boot_damaged(damage: impl FnOnce(&mut MemStorage), config: KernelConfig) -> BootError {
    let (store, _) = stored_node();
    let mut damaged = store.with(|s| s.clone());
    damage(&mut damaged);
    let copy = Shared::new(damaged.clone());
    let error = World::on_store(config, WasmConfig::default(), Box::new(copy.clone()))
        .err()
        .expect("the damaged store is refused");
    assert_eq!(copy.with(|s| s.clone()), damaged, "nothing was written");
    error
}

fn put(storage: &mut MemStorage, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = Batch::new();
    batch.put(table, key, value);
    storage.commit(&batch).unwrap();
}

fn corruption(error: &BootError) -> (Table, Corruption) {
    match error {
        BootError::Corrupt { table, problem, .. } => (*table, problem.clone()),
        other => panic!("not a corruption: {other}"),
    }
}

fn edit_entry(storage: &mut MemStorage, edit: impl FnOnce(&mut Value)) {
    let key = b"counter:test:our.os";
    let bytes = storage.get(Table::Process, key).unwrap().unwrap();
    let mut entry: Value = serde_json::from_slice(&bytes).unwrap();
    edit(&mut entry);
    put(
        storage,
        Table::Process,
        key,
        &serde_json::to_vec(&entry).unwrap(),
    );
}

#[test]
fn a_store_of_another_format_node_or_key_is_refused() {
    let config = || KernelConfig::new(OUR, 10);
    let error = boot_damaged(|s| put(s, Table::Meta, b"format", b"2"), config());
    assert!(
        matches!(
            error,
            BootError::FormatVersion {
                found: 2,
                supported: 1
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "the store has format version 2; this kernel reads version 1"
    );
    let error = boot_damaged(|_| {}, KernelConfig::new("other.os", 10));
    assert!(matches!(error, BootError::OtherNode { .. }), "{error}");
    let mut keyed = config();
    keyed.signing_key = Some([9; 32]);
    let error = boot_damaged(|_| {}, keyed);
    assert!(matches!(error, BootError::OtherKey), "{error}");
}

#[test]
fn a_corrupt_store_is_refused_with_the_table_key_and_problem() {
    let config = || KernelConfig::new(OUR, 10);
    let error = boot_damaged(|s| put(s, Table::Meta, b"format", b"one"), config());
    assert_eq!(
        corruption(&error),
        (Table::Meta, Corruption::Malformed("format"))
    );
    let error = boot_damaged(
        |s| {
            let mut batch = Batch::new();
            batch.delete(Table::Meta, b"format");
            s.commit(&batch).unwrap();
        },
        config(),
    );
    assert_eq!(
        corruption(&error),
        (Table::Meta, Corruption::MissingMeta("format"))
    );
    let error = boot_damaged(|s| put(s, Table::Meta, b"key", b"short"), config());
    assert_eq!(
        corruption(&error),
        (Table::Meta, Corruption::Malformed("key"))
    );
    let error = boot_damaged(|s| put(s, Table::Process, b"counter", b"{}"), config());
    assert!(matches!(
        corruption(&error),
        (Table::Process, Corruption::NotAProcessId(_))
    ));
    let error = boot_damaged(
        |s| put(s, Table::Process, b"counter:test:our.os", b"{\"truncated"),
        config(),
    );
    assert!(matches!(
        corruption(&error),
        (Table::Process, Corruption::Json(_))
    ));
    assert!(error.to_string().contains("counter:test:our.os"), "{error}");
}

#[test]
fn a_bad_signature_or_bad_code_is_refused() {
    let config = || KernelConfig::new(OUR, 10);
    let error = boot_damaged(
        |s| {
            edit_entry(s, |entry| {
                let signature = &mut entry["capabilities"][0][1][0];
                *signature = json!(signature.as_u64().unwrap() ^ 1);
            });
        },
        config(),
    );
    assert!(
        matches!(
            corruption(&error),
            (Table::Process, Corruption::BadSignature(_))
        ),
        "{error}"
    );
    let error = boot_damaged(
        |s| edit_entry(s, |e| e["code"] = json!("not a hash")),
        config(),
    );
    assert!(matches!(
        corruption(&error),
        (Table::Process, Corruption::BadCodeRef(_))
    ));
    let error = boot_damaged(
        |s| edit_entry(s, |e| e["code"] = json!("00".repeat(32))),
        config(),
    );
    assert!(matches!(error, BootError::MissingCode { .. }), "{error}");
    let error = boot_damaged(
        |s| {
            let (hash, _) = s.scan(Table::Code, b"").unwrap().remove(0);
            put(s, Table::Code, &hash, b"other code");
        },
        config(),
    );
    assert_eq!(
        corruption(&error),
        (Table::Code, Corruption::CodeHashMismatch)
    );
}

#[test]
fn a_process_waiting_to_restart_survives_a_reboot() {
    let store = Shared::new(MemStorage::new());
    let mut world = boot(&store, 11).unwrap();
    let fragile = world.spawn("fragile", "crash-on-message", OnExit::Restart, vec![], true);
    // Two crashes in quick succession: the second restart waits out a backoff.
    ask(&mut world, &fragile, "die");
    let target = addr(&format!("{OUR}@{fragile}"));
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(&client, target, Request::new("die"), None, None)
        .unwrap();
    for _ in 0..1000 {
        if !world.kernel.has_process(&fragile) {
            break;
        }
        world.kernel.harness().step();
    }
    assert!(
        !world.kernel.has_process(&fragile),
        "waiting out its backoff"
    );
    assert!(
        world.kernel.stored_map().unwrap().contains_key(&fragile),
        "still persisted while it waits"
    );
    drop(world);
    let mut world = boot(&store, 11).unwrap();
    world.kernel.harness().run_until_idle();
    assert!(world.kernel.has_process(&fragile), "back after the reboot");
}

fn redb_world(path: &std::path::Path, config: KernelConfig) -> Result<World, BootError> {
    let storage = RedbStorage::open(path).map_err(BootError::Storage)?;
    World::on_store(config, WasmConfig::default(), Box::new(storage))
}

#[test]
fn a_node_on_a_redb_file_boots_again_with_its_state() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("kernel.redb");
    let mut world = redb_world(&path, KernelConfig::new(OUR, 12)).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    for expected in [1, 2] {
        assert_eq!(ask(&mut world, &counter, "c"), vec![json!(expected)]);
    }
    let map = world.kernel.persisted_map();
    assert!(
        RedbStorage::open(&path).is_err(),
        "a second open of a live store is refused"
    );
    drop(world);
    let mut world = redb_world(&path, KernelConfig::new(OUR, 12)).unwrap();
    assert_eq!(world.kernel.persisted_map(), map);
    world.kernel.harness().run_until_idle();
    assert_eq!(ask(&mut world, &counter, "c"), vec![json!(3)]);
}

#[test]
fn with_a_sync_interval_commits_are_synced_before_an_answer_leaves() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("kernel.redb");
    let mut config = KernelConfig::new(OUR, 13);
    config.sync_interval_nanos = u64::MAX;
    let mut world = redb_world(&path, config).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    let target = addr(&format!("{OUR}@{counter}"));
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(&client, target, Request::new("c").expecting(5), None, None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    let (commits, synced) = world.kernel.commits();
    assert!(synced < commits, "the count's commit waits for a sync");
    let answer = world.kernel.harness().receive_as(&client).unwrap();
    assert!(answer.is_some());
    let (commits, synced) = world.kernel.commits();
    assert_eq!(synced, commits, "synced before the answer was handed out");
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_as_it_was() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("kernel.redb");
    let garbage = b"not a redb database, just some bytes that a user left here".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let error = RedbStorage::open(&path).unwrap_err();
    assert_eq!(error.operation(), hyperkernel::storage::Operation::Open);
    assert!(
        error.to_string().contains("kernel.redb"),
        "names the file: {error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "nothing written");
    let error = RedbStorage::open(home.path()).unwrap_err();
    assert_eq!(
        error.operation(),
        hyperkernel::storage::Operation::Open,
        "{error}"
    );
}

#[test]
fn a_truncated_store_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("kernel.redb");
    let mut world = redb_world(&path, KernelConfig::new(OUR, 14)).unwrap();
    world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    drop(world);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let truncated = std::fs::read(&path).unwrap();
    let error = redb_world(&path, KernelConfig::new(OUR, 14)).err().unwrap();
    assert!(matches!(error, BootError::Storage(_)), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), truncated, "nothing written");
}

#[test]
fn corrupt_pages_are_refused_without_a_panic_and_without_a_write() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("kernel.redb");
    let mut world = redb_world(&path, KernelConfig::new(OUR, 15)).unwrap();
    let counter = world.spawn("counter", "counter", OnExit::Restart, vec![], true);
    assert_eq!(ask(&mut world, &counter, "c"), vec![json!(1)]);
    drop(world);
    let mut bytes = std::fs::read(&path).unwrap();
    // Past the header, every page gets bytes of garbage.
    for offset in (4096..bytes.len()).step_by(512) {
        bytes[offset] ^= 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let error = redb_world(&path, KernelConfig::new(OUR, 15)).err();
    let error = error.expect("a store with corrupt pages does not boot");
    assert!(
        matches!(error, BootError::Storage(_) | BootError::Corrupt { .. }),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "nothing written: {error}"
    );
}

//! Node crashes and reboots in simulation: the node's store outlives the kernel, the harness
//! crashes the node (memory, mailboxes and messages in flight are gone; a simulated disk loses
//! or tears what was not synced), and boots a new kernel on the same store after a downtime.
//!
//! The store of a run is `memory` (`MemStorage`, every commit durable at once) or `disk` (redb
//! on a [`SimDisk`]). After every commit the harness keeps the store's image (process, state
//! and vfs tables) until the next sync; a rebooted node must come up with one of those images,
//! so nothing committed and synced is lost and nothing half-written is read. The harness's own
//! reads of the store pause the disk's faults (they are the checker's, not the node's).
//!
//! What a reboot loses, by design: messages in flight and requests outstanding (a requester
//! hears nothing more of them; its own timeout is its answer), timers, every process's run
//! (each restored process starts again from `init`), and `OnExit::None` processes.

use crate::node::disk::{DiskFaults, SimDisk};
use crate::node::inside::{Faults, Inside};
use hyperkernel::{
    BootError, Kernel, KernelBuilder, KernelConfig, MemStorage, RedbStorage, SharedStorage,
    Storage, StorageError, Table, Time, Timestamp,
};
use std::collections::BTreeMap;

/// The store's tables that carry a node's state (code is checked by its hash at boot).
const IMAGED: [Table; 3] = [Table::Process, Table::State, Table::Vfs];

/// A store's contents, table by table.
pub type Image = BTreeMap<(Table, Vec<u8>), Vec<u8>>;

/// The store a simulated node runs on; clones share it.
#[derive(Clone, Debug)]
pub enum Store {
    /// In memory.
    Memory(SharedStorage<MemStorage>),
    /// redb on a simulated disk.
    Disk(SimDisk),
}

impl Store {
    /// A new, empty store.
    pub fn new(disk: bool, seed: u64, faults: DiskFaults) -> Self {
        if disk {
            Self::Disk(SimDisk::new(seed, faults))
        } else {
            Self::Memory(SharedStorage::new(MemStorage::new()))
        }
    }

    /// A handle for a kernel.
    ///
    /// # Errors
    /// redb could not open the disk.
    pub fn open(&self) -> Result<Box<dyn Storage>, StorageError> {
        match self {
            Self::Memory(shared) => Ok(Box::new(shared.clone())),
            Self::Disk(disk) => Ok(Box::new(RedbStorage::on_backend(disk.clone())?)),
        }
    }

    /// The simulated disk, if the store is on one.
    pub fn disk(&self) -> Option<&SimDisk> {
        match self {
            Self::Memory(_) => None,
            Self::Disk(disk) => Some(disk),
        }
    }

    /// Runs `f` with the disk's faults paused.
    fn quietly<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(disk) = self.disk() else {
            return f();
        };
        let faults = disk.faults();
        disk.set_faults(DiskFaults::default());
        let result = f();
        disk.set_faults(faults);
        result
    }

    /// The image of what `kernel` has committed.
    ///
    /// # Errors
    /// The store could not be read even without faults (a corrupt store).
    pub fn image(&self, kernel: &Kernel) -> Result<Image, StorageError> {
        self.quietly(|| {
            let mut image = Image::new();
            for table in IMAGED {
                for (key, value) in kernel.storage().scan(table, b"")? {
                    image.insert((table, key), value);
                }
            }
            Ok(image)
        })
    }

    /// The node crashes: the disk stops taking writes and resolves what it had not synced.
    pub fn power_off(&self) {
        if let Some(disk) = self.disk() {
            disk.power_off();
        }
    }

    /// The disk works again, holding what survived the crash.
    pub fn power_on(&self) {
        if let Some(disk) = self.disk() {
            disk.power_on();
        }
    }

    /// Whether the disk ever flipped a bit. A corrupt store is then expected: our checksums
    /// catch a flip in a value, but redb checks its page checksums only when it recovers, so a
    /// flipped page it reads and writes back can lose entries without an error.
    pub fn corrupted(&self) -> bool {
        self.disk().is_some_and(|disk| {
            let counters = disk.counters();
            counters.write_flips + counters.read_flips > 0
        })
    }
}

/// The committed images a reboot may come back with: from the last synced commit on.
#[derive(Debug, Default)]
pub struct Images {
    // Invariant: non-empty once the node booted; the first is the last synced image.
    kept: Vec<Image>,
    commits: u64,
}

impl Images {
    /// After a step: keeps the image of a new commit, forgetting those a sync made obsolete.
    ///
    /// # Errors
    /// The store could not be read.
    pub fn after_step(&mut self, store: &Store, kernel: &Kernel) -> Result<(), String> {
        let (commits, synced) = kernel.commits();
        if commits == self.commits && !self.kept.is_empty() {
            return Ok(());
        }
        let image = store
            .image(kernel)
            .map_err(|e| format!("the harness could not read the store: {e}"))?;
        if synced == commits {
            self.kept.clear();
        }
        self.kept.push(image);
        self.commits = commits;
        debug_assert!(!self.kept.is_empty(), "an image is kept");
        Ok(())
    }

    /// The node is crashing: a commit that failed may still have reached the disk (its
    /// outcome was never let out), so its image is one the node may come back with too.
    pub fn crashing(&mut self, kernel: &Kernel) {
        let batch = kernel.uncommitted();
        if batch.is_empty() {
            return;
        }
        let Some(last) = self.kept.last() else {
            return;
        };
        let mut image = last.clone();
        for (table, key, write) in batch.iter().filter(|(t, _, _)| IMAGED.contains(t)) {
            match write {
                Some(value) => image.insert((table, key.to_vec()), value.to_vec()),
                None => image.remove(&(table, key.to_vec())),
            };
        }
        self.kept.push(image);
    }

    /// Checks a rebooted node's image against those it may have; starts over from it.
    ///
    /// # Errors
    /// The image is none of them: a committed and synced step was lost, or a torn one read.
    pub fn rebooted(&mut self, store: &Store, kernel: &Kernel) -> Result<(), String> {
        let image = store
            .image(kernel)
            .map_err(|e| format!("the harness could not read the rebooted store: {e}"))?;
        if !self.kept.is_empty() && !self.kept.contains(&image) {
            let described = describe_difference(self.kept.last(), &image);
            return Err(format!(
                "the rebooted node's store is none of the {} committed images since the last sync: {described}",
                self.kept.len()
            ));
        }
        self.kept = vec![image];
        self.commits = kernel.commits().0;
        Ok(())
    }
}

fn describe_difference(expected: Option<&Image>, found: &Image) -> String {
    let Some(expected) = expected else {
        return "no image was kept".into();
    };
    let differing = expected
        .iter()
        .find(|(key, value)| found.get(*key) != Some(value))
        .map(|((table, key), _)| (table, key))
        .or_else(|| {
            found
                .keys()
                .find(|key| !expected.contains_key(*key))
                .map(|(table, key)| (table, key))
        });
    match differing {
        Some((table, key)) => {
            let show = |image: &Image| {
                image
                    .get(&(*table, key.clone()))
                    .map_or_else(|| "absent".to_owned(), |v| format!("{} bytes", v.len()))
            };
            format!(
                "table {table} key {:?} differs from the last commit ({}, booted with {})",
                String::from_utf8_lossy(key),
                show(expected),
                show(found)
            )
        }
        None => "they differ".into(),
    }
}

/// What a node needs to boot again.
pub struct Boot<'a> {
    /// Its configuration (the seed is varied per boot, so fresh ids never repeat).
    pub config: &'a KernelConfig,
    /// Its loader.
    pub loader: Box<dyn hyperkernel::ProcessLoader>,
    /// Its store.
    pub store: &'a Store,
    /// When it comes up.
    pub at: Timestamp,
    /// Which boot this is (1 for the first reboot).
    pub number: u64,
    /// Whether the node runs on driven time (a node of a world).
    pub driven: bool,
}

impl Boot<'_> {
    /// Boots the node, continuing `trace`, with `inside`'s hook (its stream restarted from
    /// the boot's seed).
    ///
    /// # Errors
    /// The store could not be opened, or the kernel refused it.
    pub fn boot(
        self,
        trace: hyperkernel::trace::Trace,
        inside: &Inside,
    ) -> Result<Kernel, BootError> {
        let mut config = self.config.clone();
        config.seed = self
            .config
            .seed
            .wrapping_add(self.number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        inside.rebooted(config.seed);
        let storage = self.store.open().map_err(BootError::Storage)?;
        KernelBuilder::new(&config.our, config.seed)
            .config(config)
            .time(if self.driven {
                Time::Driven(self.at)
            } else {
                Time::Simulated(self.at)
            })
            .loader(self.loader)
            .storage(storage)
            .trace(trace)
            .fault_hook(inside.hook())
            .build()
    }
}

/// Why a reboot failed the run.
#[derive(Debug)]
pub enum RebootError {
    /// The rebooted node's state is not a committed one (an invariant).
    Lost(String),
    /// The node could not boot though its disk was never corrupted.
    Boot(BootError),
}

impl std::fmt::Display for RebootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lost(why) => f.write_str(why),
            Self::Boot(error) => write!(f, "the node did not boot again: {error}"),
        }
    }
}

/// Boot attempts before a node counts as down (transient read faults may fail one).
const BOOT_ATTEMPTS: u32 = 16;

/// The node's life across reboots, kept by the harness.
pub struct Node {
    /// Its store.
    pub store: Store,
    images: Images,
    config: KernelConfig,
    /// Driven processes to register again after each boot: id, capabilities, public.
    driven: Vec<(hyperkernel::ProcessId, Vec<hyperkernel::Capability>, bool)>,
    /// Reboots so far.
    pub reboots: u64,
    /// Set when the node could not come back (its disk was corrupted by an injected flip).
    pub down: Option<String>,
    /// Whether reboots can happen (images are kept only then).
    watch: bool,
    /// Whether the node runs on driven time (a node of a world).
    driven_time: bool,
    /// The faults inside its kernel, across its reboots.
    pub inside: Inside,
}

impl Node {
    /// A node on `store` with `config`, its kernel built with `inside`'s hook; `watch` when
    /// reboots may happen.
    pub fn new(store: Store, config: KernelConfig, watch: bool, inside: Inside) -> Self {
        Self {
            store,
            images: Images::default(),
            config,
            driven: Vec::new(),
            reboots: 0,
            down: None,
            watch,
            driven_time: false,
            inside,
        }
    }

    /// The node runs on driven time (a node of a world): it boots on it again.
    #[must_use]
    pub fn on_driven_time(mut self) -> Self {
        self.driven_time = true;
        self
    }

    /// Setup is done: syncs it, and keeps its image as the first one a reboot may come back
    /// with.
    ///
    /// # Errors
    /// The sync failed, or the store could not be read.
    pub fn started(&mut self, kernel: &mut Kernel) -> Result<(), String> {
        kernel
            .sync()
            .map_err(|e| format!("the store did not sync after setup: {e}"))?;
        if self.watch {
            self.images.rebooted(&self.store, kernel)?;
        }
        Ok(())
    }

    /// Remembers a driven process to register again after each boot.
    pub fn add_driven(
        &mut self,
        id: hyperkernel::ProcessId,
        caps: Vec<hyperkernel::Capability>,
        public: bool,
    ) {
        self.driven.push((id, caps, public));
    }

    /// After each step: the disk's faults go into the trace; the committed image is kept.
    ///
    /// # Errors
    /// The store could not be read by the harness.
    pub fn after_step(&mut self, kernel: &mut Kernel) -> Result<(), String> {
        if let Some(disk) = self.store.disk() {
            for event in disk.take_events() {
                let fault = hyperkernel::Fault::Disk { what: event.what };
                self.inside.record(kernel, fault);
            }
        }
        if self.watch {
            self.images.after_step(&self.store, kernel)?;
        }
        Ok(())
    }

    /// Crashes the node and boots it again `downtime_ms` later with `loader`'s processes;
    /// `faults` are the kernel faults to keep injecting.
    ///
    /// # Errors
    /// The state it came back with is not a committed one, or it did not boot though its
    /// disk holds no injected corruption.
    pub fn reboot(
        &mut self,
        kernel: &mut Kernel,
        downtime_ms: u64,
        loader: &dyn Fn() -> Box<dyn hyperkernel::ProcessLoader>,
        faults: Faults,
    ) -> Result<(), RebootError> {
        let at = kernel.now().plus_millis(downtime_ms);
        if self.watch {
            self.images.crashing(kernel);
        }
        self.store.power_off();
        let trace = kernel.harness().take_trace();
        let placeholder = KernelBuilder::new(&self.config.our, self.config.seed)
            .trace(trace.clone())
            .build()
            .map_err(RebootError::Boot)?;
        drop(std::mem::replace(kernel, placeholder));
        self.store.power_on();
        self.reboots += 1;
        let mut last_error = None;
        for attempt in 0..BOOT_ATTEMPTS {
            let boot = Boot {
                config: &self.config,
                loader: loader(),
                store: &self.store,
                at: at.plus_millis(u64::from(attempt)),
                number: self.reboots,
                driven: self.driven_time,
            };
            match boot.boot(trace.clone(), &self.inside) {
                Ok(booted) => {
                    *kernel = booted;
                    return self.came_up(kernel, downtime_ms, faults);
                }
                Err(error) => last_error = Some(error),
            }
        }
        let Some(error) = last_error else {
            unreachable!("at least one boot was attempted");
        };
        if self.store.corrupted() {
            self.down = Some(format!("down after reboot {}: {error}", self.reboots));
            return Ok(());
        }
        Err(RebootError::Boot(error))
    }

    fn came_up(
        &mut self,
        kernel: &mut Kernel,
        downtime_ms: u64,
        faults: Faults,
    ) -> Result<(), RebootError> {
        self.inside
            .record(kernel, hyperkernel::Fault::Rebooted { downtime_ms });
        self.inside.set(faults);
        for (id, caps, public) in &self.driven {
            let register = hyperkernel::Input::Register {
                process: id.clone(),
                capabilities: caps.clone(),
                public: *public,
                protected: false,
            };
            kernel
                .input(register)
                .map_err(|e| RebootError::Lost(format!("{id} could not register again: {e}")))?;
        }
        if self.watch
            && let Err(lost) = self.images.rebooted(&self.store, kernel)
        {
            if !self.store.corrupted() {
                return Err(RebootError::Lost(lost));
            }
            self.down = Some(format!(
                "stopped after reboot {}: the disk's flipped bits corrupted the store ({lost})",
                self.reboots
            ));
        }
        Ok(())
    }
}

//! A simulated disk under redb (`redb::StorageBackend`), so the production store engine itself
//! runs under faults.
//!
//! Writes land in a volatile cache (what reads see) and reach the platter only at
//! `sync_data`. A crash keeps the platter and, of each write since the last sync, independently
//! all of it, none of it, or a prefix torn at a seeded sector boundary (disks reorder and tear
//! unsynced writes). Seeded faults: a read or write that fails, a sync that fails, a bit
//! flipped in a read (transient) or in a write (it stays on the platter), a full disk. Every
//! fault is drawn from the `Disk` stream of the seed, counted and kept in a log for the trace.
//!
//! A disk can also be told to crash at its n-th write or sync (`crash_at`): from that
//! operation on it keeps nothing more, and fails every call, so the kernel fail-stops exactly
//! there; the harness then reboots from what the platter holds.
//!
//! Invariant: `volatile` is `platter` with every pending write applied in order.

use crate::node::inside::PPM;
use crate::node::streams::{SimStream, rng};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// A sector: the unit a torn write is cut at.
pub const SECTOR: usize = 512;

/// Chances (ppm) of each disk fault per operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// A read fails.
    pub read_error_ppm: u32,
    /// A write fails (nothing written).
    pub write_error_ppm: u32,
    /// A sync fails (nothing made durable by it).
    pub sync_error_ppm: u32,
    /// One bit of a read comes back flipped.
    pub read_flip_ppm: u32,
    /// One bit of a write is stored flipped.
    pub write_flip_ppm: u32,
    /// Largest file, bytes (0: no limit); growing past it is a full disk.
    pub capacity: u64,
}

/// How many of each fault fired, and the crashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Reads failed.
    pub read_errors: u64,
    /// Writes failed.
    pub write_errors: u64,
    /// Syncs failed.
    pub sync_errors: u64,
    /// Bits flipped in reads.
    pub read_flips: u64,
    /// Bits flipped in writes.
    pub write_flips: u64,
    /// Writes refused because the disk was full.
    pub full: u64,
    /// Crashes.
    pub crashes: u64,
    /// Unsynced writes a crash lost whole.
    pub lost_writes: u64,
    /// Unsynced writes a crash tore.
    pub torn_writes: u64,
    /// Writes and syncs done.
    pub writes: u64,
    /// Syncs done.
    pub syncs: u64,
}

/// One fault as it fired, for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskEvent {
    /// What happened, in words.
    pub what: String,
}

/// What a crash keeps of the writes since the last sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CrashMode {
    /// Each write independently kept, lost or torn, drawn from the seed.
    #[default]
    Seeded,
    /// Every unsynced write lost (the crash came before them).
    LoseAll,
    /// Every unsynced write kept (the crash came after them, before the sync).
    KeepAll,
    /// Every unsynced write kept but the last, torn in its middle sector (the crash came
    /// during it).
    TearLast,
}

#[derive(Debug)]
struct State {
    platter: Vec<u8>,
    volatile: Vec<u8>,
    // Writes since the last sync, in order: (offset, len), and set_len calls as (len, None).
    pending: Vec<Pending>,
    faults: DiskFaults,
    counters: DiskCounters,
    rng: ChaCha8Rng,
    events: Vec<DiskEvent>,
    /// Operation number (writes and syncs) at which the disk crashes.
    crash_at: Option<u64>,
    mode: CrashMode,
    crashed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Write { offset: u64, len: usize },
    SetLen(u64),
}

/// A simulated disk; clones share it (the harness keeps one to crash and reboot from).
#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn other(what: &str) -> io::Error {
    io::Error::other(what.to_owned())
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| other("offset out of range"))
}

impl SimDisk {
    /// An empty disk whose faults come from `seed`'s disk stream.
    pub fn new(seed: u64, faults: DiskFaults) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                platter: Vec::new(),
                volatile: Vec::new(),
                pending: Vec::new(),
                faults,
                counters: DiskCounters::default(),
                rng: rng(seed, SimStream::Disk),
                events: Vec::new(),
                crash_at: None,
                mode: CrashMode::Seeded,
                crashed: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // One thread uses a disk; a poisoned lock means a panic mid-operation, whose state is
        // still consistent (each operation mutates only after its checks).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The faults from now on.
    pub fn set_faults(&self, faults: DiskFaults) {
        self.lock().faults = faults;
    }

    /// The faults now.
    pub fn faults(&self) -> DiskFaults {
        self.lock().faults
    }

    /// The node crashes: unsynced writes are kept, lost or torn (seeded), and every
    /// operation fails until `power_on` (the dying node's last calls reach nothing).
    pub fn power_off(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if !state.crashed {
            state.crash();
        }
        state.crashed = true;
    }

    /// The disk works again with what its platter holds.
    pub fn power_on(&self) {
        let mut guard = self.lock();
        guard.crashed = false;
        guard.crash_at = None;
    }

    /// Crash at the `n`-th write or sync from now (0: the next one), keeping of the unsynced
    /// writes what `mode` says.
    pub fn crash_at(&self, n: u64, mode: CrashMode) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let at = state.counters.writes + state.counters.syncs + n;
        state.crash_at = Some(at);
        state.mode = mode;
    }

    /// What fired so far.
    pub fn counters(&self) -> DiskCounters {
        self.lock().counters
    }

    /// The faults that fired since the last call.
    pub fn take_events(&self) -> Vec<DiskEvent> {
        std::mem::take(&mut self.lock().events)
    }

    /// The node crashes: unsynced writes are kept, lost or torn (seeded); the disk works
    /// again afterwards with the platter as its contents.
    pub fn crash(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.crash();
    }

    /// Bytes on the platter (durable).
    pub fn durable_len(&self) -> usize {
        self.lock().platter.len()
    }
}

impl State {
    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.next_u32() % PPM < ppm
    }

    fn log(&mut self, what: String) {
        self.events.push(DiskEvent { what });
    }

    fn pick(&mut self, below: usize) -> usize {
        let below = u32::try_from(below.max(1)).unwrap_or(u32::MAX);
        usize::try_from(self.rng.next_u32() % below).unwrap_or(0)
    }

    /// Counts a write or sync; true if the disk crashes at it (or has crashed).
    fn operation_crashes(&mut self) -> bool {
        if self.crashed {
            return true;
        }
        let number = self.counters.writes + self.counters.syncs;
        if self.crash_at == Some(number) {
            self.crash_at = None;
            self.crash();
            self.crashed = true;
            self.log(format!("crash at operation {number}"));
            return true;
        }
        false
    }

    fn crash(&mut self) {
        self.counters.crashes += 1;
        let pending = std::mem::take(&mut self.pending);
        let volatile = std::mem::take(&mut self.volatile);
        let mode = std::mem::take(&mut self.mode);
        let last = pending.len().saturating_sub(1);
        for (index, write) in pending.into_iter().enumerate() {
            match write {
                Pending::SetLen(len) => {
                    let keep = match mode {
                        CrashMode::Seeded => self.rng.next_u32().is_multiple_of(2),
                        CrashMode::LoseAll => false,
                        CrashMode::KeepAll | CrashMode::TearLast => true,
                    };
                    if keep {
                        let len = usize::try_from(len).unwrap_or(usize::MAX);
                        self.platter.resize(len, 0);
                    }
                }
                Pending::Write { offset, len } => {
                    let Ok(start) = usize::try_from(offset) else {
                        continue;
                    };
                    let outcome = match mode {
                        CrashMode::Seeded => self.rng.next_u32() % 3,
                        CrashMode::LoseAll => 1,
                        CrashMode::KeepAll => 0,
                        CrashMode::TearLast if index == last => 3,
                        CrashMode::TearLast => 0,
                    };
                    let kept = match outcome {
                        0 => len,
                        1 => {
                            self.counters.lost_writes += 1;
                            0
                        }
                        2 => {
                            self.counters.torn_writes += 1;
                            let sectors = len.div_ceil(SECTOR);
                            (self.pick(sectors) * SECTOR).min(len)
                        }
                        _ => {
                            self.counters.torn_writes += 1;
                            (len.div_ceil(SECTOR) / 2 * SECTOR).min(len)
                        }
                    };
                    let end = (start + kept).min(volatile.len());
                    if start >= end {
                        continue;
                    }
                    if self.platter.len() < end {
                        self.platter.resize(end, 0);
                    }
                    self.platter[start..end].copy_from_slice(&volatile[start..end]);
                }
            }
        }
        self.volatile = self.platter.clone();
        debug_assert!(self.pending.is_empty(), "a crash leaves nothing pending");
    }
}

impl redb::StorageBackend for SimDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().volatile.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.crashed {
            return Err(other("the disk crashed"));
        }
        let ppm = state.faults.read_error_ppm;
        if state.chance(ppm) {
            state.counters.read_errors += 1;
            state.log(format!("read of {} bytes at {offset} failed", out.len()));
            return Err(other("simulated read error"));
        }
        let start = to_usize(offset)?;
        let end = start
            .checked_add(out.len())
            .filter(|end| *end <= state.volatile.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(&state.volatile[start..end]);
        let ppm = state.faults.read_flip_ppm;
        if !out.is_empty() && state.chance(ppm) {
            let bit = state.pick(out.len() * 8);
            out[bit / 8] ^= 1 << (bit % 8);
            state.counters.read_flips += 1;
            state.log(format!("bit {bit} of a read at {offset} flipped"));
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.operation_crashes() {
            return Err(other("the disk crashed"));
        }
        let capacity = state.faults.capacity;
        if capacity > 0 && len > capacity {
            state.counters.full += 1;
            state.log(format!("disk full growing to {len} bytes"));
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the disk is full",
            ));
        }
        let new_len = to_usize(len)?;
        state.volatile.resize(new_len, 0);
        state.pending.push(Pending::SetLen(len));
        state.counters.writes += 1;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.operation_crashes() {
            return Err(other("the disk crashed"));
        }
        state.counters.syncs += 1;
        let ppm = state.faults.sync_error_ppm;
        if state.chance(ppm) {
            state.counters.sync_errors += 1;
            state.log("a sync failed".into());
            return Err(other("simulated sync error"));
        }
        state.platter.clone_from(&state.volatile);
        state.pending.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.operation_crashes() {
            return Err(other("the disk crashed"));
        }
        state.counters.writes += 1;
        let ppm = state.faults.write_error_ppm;
        if state.chance(ppm) {
            state.counters.write_errors += 1;
            state.log(format!("write of {} bytes at {offset} failed", data.len()));
            return Err(other("simulated write error"));
        }
        let start = to_usize(offset)?;
        let end = start
            .checked_add(data.len())
            .ok_or_else(|| other("write past the address space"))?;
        let capacity = state.faults.capacity;
        if capacity > 0 && end as u64 > capacity {
            state.counters.full += 1;
            state.log(format!("disk full writing at {offset}"));
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "the disk is full",
            ));
        }
        if state.volatile.len() < end {
            state.volatile.resize(end, 0);
        }
        state.volatile[start..end].copy_from_slice(data);
        let ppm = state.faults.write_flip_ppm;
        if !data.is_empty() && state.chance(ppm) {
            let bit = state.pick(data.len() * 8);
            state.volatile[start + bit / 8] ^= 1 << (bit % 8);
            state.counters.write_flips += 1;
            state.log(format!("bit {bit} of a write at {offset} stored flipped"));
        }
        state.pending.push(Pending::Write {
            offset,
            len: data.len(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend;

    fn read_all(disk: &SimDisk) -> Vec<u8> {
        let len = usize::try_from(disk.len().unwrap()).unwrap();
        let mut out = vec![0; len];
        disk.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn synced_writes_survive_a_crash_and_unsynced_ones_may_not() {
        let disk = SimDisk::new(1, DiskFaults::default());
        disk.write(0, &[1; 4096]).unwrap();
        disk.sync_data().unwrap();
        for round in 0..50u8 {
            disk.write(0, &[round.wrapping_add(2); 4096]).unwrap();
            disk.crash();
            let after = read_all(&disk);
            assert_eq!(after.len(), 4096);
            // Every sector is either the synced one or the new one: torn at sector bounds.
            for sector in after.chunks(SECTOR) {
                let first = sector[0];
                assert!(sector.iter().all(|b| *b == first), "torn inside a sector");
            }
            disk.write(0, &after).unwrap();
            disk.sync_data().unwrap();
        }
        let counters = disk.counters();
        assert_eq!(counters.crashes, 50);
        assert!(
            counters.lost_writes > 0 && counters.torn_writes > 0,
            "{counters:?}"
        );
    }

    #[test]
    fn a_crash_point_fails_every_later_operation_and_keeps_the_platter() {
        let disk = SimDisk::new(2, DiskFaults::default());
        disk.write(0, b"durable").unwrap();
        disk.sync_data().unwrap();
        disk.crash_at(1, CrashMode::Seeded);
        disk.write(0, b"pending").unwrap();
        assert!(disk.sync_data().is_err(), "it crashes at the sync");
        assert!(disk.write(0, b"later").is_err());
        assert!(disk.take_events()[0].what.starts_with("crash at operation"));
    }

    #[test]
    fn faults_fire_as_drawn_and_the_same_seed_draws_the_same() {
        let faults = DiskFaults {
            read_error_ppm: PPM / 4,
            write_error_ppm: PPM / 4,
            read_flip_ppm: PPM / 4,
            ..DiskFaults::default()
        };
        let outcomes = |seed| {
            let disk = SimDisk::new(seed, faults);
            let mut seen = Vec::new();
            for i in 0..200u64 {
                seen.push(disk.write(i * 8, &i.to_le_bytes()).is_ok());
                let mut out = [0; 8];
                seen.push(disk.read(i * 4, &mut out).is_ok());
            }
            (seen, disk.counters())
        };
        let (first, counters) = outcomes(3);
        assert_eq!(outcomes(3).0, first, "deterministic");
        assert!(counters.read_errors > 0 && counters.write_errors > 0);
        assert!(counters.read_flips > 0);
        assert_ne!(outcomes(4).0, first, "another seed, other faults");
    }

    #[test]
    fn a_full_disk_refuses_to_grow() {
        let faults = DiskFaults {
            capacity: 1024,
            ..DiskFaults::default()
        };
        let disk = SimDisk::new(5, faults);
        disk.write(0, &[0; 1024]).unwrap();
        let error = disk.write(1000, &[0; 100]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            disk.set_len(4096).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(disk.counters().full, 2);
    }
}

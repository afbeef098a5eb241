//! `sim replay --journal HOME`: runs a real node's session again in simulation.
//!
//! The node journaled every input it gave its kernel (hyperkernel::journal): its clock
//! readings, steps, messages and commands. The replay boots a kernel on a copy of the epoch's
//! store image with the epoch's seed and driven time, and feeds it the same inputs in the same
//! order: the kernel is a function of them, so its trace is the live run's, event for event.
//! Every checkpoint the node wrote (its trace's length and hash) is checked on the way, so a
//! replay that parts from the live run says where. `--until` and `--step` work as on a
//! simulated trace, and `--trace FILE` writes the replayed trace for `sim diff`.

use crate::tools::replay::{Replay, Watch};
use hyperkernel::journal::{Entry, JournalError, Mark, open_epoch};
use hyperkernel::{
    Input, Kernel, KernelBuilder, KernelConfig, RedbStorage, Time, Timestamp, TraceLevel,
    WasmConfig, WasmLoader,
};
use std::path::Path;

/// What a journal replay found.
pub struct JournalRun {
    /// The kernel where the replay stopped.
    pub kernel: Kernel,
    /// The epoch replayed.
    pub epoch: u64,
    /// Inputs fed.
    pub inputs: u64,
    /// Of them, steps.
    pub steps: u64,
    /// Checkpoints of the live run that the replay matched.
    pub marks_matched: u64,
    /// The live run's final mark, if it shut down cleanly and the replay got there.
    pub end: Option<Mark>,
    /// The last clock reading: how long the live session ran, in node time.
    pub session: Timestamp,
    /// Where the journal is damaged (the replay stopped before it), if it is.
    pub damage: Option<JournalError>,
}

/// A scratch copy of the store image in a private directory (mode 0700, a random name made
/// exclusively: nobody can plant a link there), removed with it when dropped. The journal's
/// image is never written.
struct ScratchStore {
    /// Held for its `Drop`: the directory and the copy in it go when the replay is done.
    _dir: tempfile::TempDir,
}

/// Boots the epoch's kernel on a scratch copy of its store image.
fn boot(epoch: &hyperkernel::journal::Epoch) -> Result<(Kernel, ScratchStore), String> {
    let dir = tempfile::Builder::new()
        .prefix("hyperkernel-replay-")
        .tempdir()
        .map_err(|e| format!("a scratch directory: {e}"))?;
    let copy = dir.path().join("store.redb");
    // `create_new`: the file cannot exist yet, and a link is never followed.
    let mut target = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&copy)
        .map_err(|e| format!("{}: {e}", copy.display()))?;
    let mut source =
        std::fs::File::open(&epoch.store).map_err(|e| format!("{}: {e}", epoch.store.display()))?;
    std::io::copy(&mut source, &mut target)
        .map_err(|e| format!("{}: {e}", epoch.store.display()))?;
    drop(target);
    let scratch = ScratchStore { _dir: dir };
    let storage = RedbStorage::open(&copy).map_err(|e| e.to_string())?;
    let begin = &epoch.begin;
    let mut config = KernelConfig::new(&begin.node, begin.seed);
    config.signing_key = begin.signing_key;
    config.sync_interval_nanos = begin.sync_interval_nanos;
    config.vfs = begin.vfs;
    config.network = begin.network;
    config.net = begin.net;
    config.trace_bodies = begin.trace_bodies;
    config.trace_level = TraceLevel::Full;
    // Wasm, and the simulator's own natives (`echo`, `sink`: a journal of a simulated world's
    // node may start them; no production node's code is their name).
    let loader = WasmLoader::new(WasmConfig::default())
        .map_err(|e| e.to_string())?
        .with_native(crate::node::natives::natives(&std::sync::Arc::default()));
    let kernel = KernelBuilder::new(&begin.node, begin.seed)
        .config(config)
        .time(Time::Driven(begin.time_start))
        .loader(Box::new(loader))
        .storage(Box::new(storage))
        .build()
        .map_err(|e| {
            format!(
                "{}: the store image does not boot: {e}",
                epoch.dir.display()
            )
        })?;
    Ok((kernel, scratch))
}

/// Checks the replayed trace against the live run's mark at entry `entry`.
fn check_mark(kernel: &Kernel, mark: Mark, entry: u64) -> Result<(), String> {
    let trace = kernel.trace();
    if trace.len() == mark.events && trace.hash() == mark.hash {
        return Ok(());
    }
    Err(format!(
        "the replay parted from the live run before entry {entry}: the live trace had {} events \
         with hash {:016x} there, the replay {} with hash {:016x} (the build changed since the \
         journal was written, or the kernel is not deterministic)",
        mark.events,
        mark.hash,
        trace.len(),
        trace.hash()
    ))
}

/// Replays epoch `epoch` (the latest when `None`) of the journal of node home `home`.
///
/// # Errors
/// No journal there, the store image does not boot, or the replay parted from the live run.
/// A damaged entry is not an error: the replay stops before it and says so (`damage`).
pub fn replay_journal(
    home: &Path,
    epoch: Option<u64>,
    how: &Replay,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn std::io::Write,
) -> Result<JournalRun, String> {
    let (epoch, mut reader) =
        open_epoch(&home.join("journal"), epoch).map_err(|e| e.to_string())?;
    let (kernel, _scratch) = boot(&epoch)?;
    let mut run = JournalRun {
        kernel,
        epoch: epoch.begin.epoch,
        inputs: 0,
        steps: 0,
        marks_matched: 0,
        end: None,
        session: epoch.begin.time_start,
        damage: None,
    };
    let mut watch = Watch::new(how, input, out);
    loop {
        let entry_number = reader.entry();
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(damage) => {
                run.damage = Some(damage);
                break;
            }
        };
        match entry {
            Entry::Input(input) => {
                let step = matches!(input, Input::Step);
                if let Input::Time(at) = input {
                    run.session = at;
                }
                // The live node got the same answer to the same input; errors included.
                let _ = run.kernel.input(input);
                run.inputs += 1;
                if step {
                    run.steps += 1;
                    if !watch.after_step(&run.kernel) {
                        return Ok(run);
                    }
                }
            }
            Entry::Checkpoint(mark) | Entry::Full(mark) => {
                check_mark(&run.kernel, mark, entry_number)?;
                run.marks_matched += 1;
            }
            Entry::End(mark) => {
                check_mark(&run.kernel, mark, entry_number)?;
                run.marks_matched += 1;
                run.end = Some(mark);
            }
            Entry::Begin(_) | Entry::Segment { .. } => {
                return Err(format!(
                    "{}: entry {entry_number}: a header in the middle of the epoch",
                    reader.file().display()
                ));
            }
        }
    }
    Ok(run)
}

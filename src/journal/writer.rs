//! Writing the journal: a new epoch per boot, entries appended through a buffer, segments
//! rotated at their cap, old epochs removed at the journal's cap.

use super::{
    Begin, CHECKPOINT_STEPS, JournalError, Limits, Mark, STORE_IMAGE, check, encode_input,
    encode_mark, put_varint,
};
use crate::env::Timestamp;
use crate::kernel::Input;
use crate::trace::Trace;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends a node's inputs to its journal.
pub struct JournalWriter {
    root: PathBuf,
    epoch_dir: PathBuf,
    epoch: u64,
    segment: u64,
    file: BufWriter<File>,
    limits: Limits,
    // Invariant: the bytes of the current segment, and of the whole journal, as written
    // (buffered bytes included).
    segment_bytes: u64,
    journal_bytes: u64,
    last_time: Timestamp,
    steps_since_mark: u64,
    /// Set once the journal reached its cap: nothing more is recorded.
    full: bool,
    scratch: Vec<u8>,
}

pub(super) fn segment_name(segment: u64) -> String {
    format!("{segment:04}.log")
}

/// The bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64, JournalError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(JournalError::io(dir))? {
        let entry = entry.map_err(JournalError::io(dir))?;
        let meta = entry.metadata().map_err(JournalError::io(&entry.path()))?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

impl JournalWriter {
    /// Begins a new epoch under `root` (created if missing): copies `store` (the store image
    /// the kernel is about to boot from) into it and writes `begin` (its `epoch` is set here).
    /// Older epochs are removed while the journal is over its cap.
    ///
    /// A store image over half the journal's cap is refused before anything is made or
    /// removed (its apparent size: a sparse 6 GB store once went into a 1 GiB journal whole,
    /// removing the older epochs to make room).
    ///
    /// # Errors
    /// The store is too large to journal, or a directory or file could not be made, copied or
    /// written.
    pub fn begin(
        root: &Path,
        store: &Path,
        mut begin: Begin,
        limits: Limits,
    ) -> Result<Self, JournalError> {
        let store_bytes = std::fs::metadata(store)
            .map_err(JournalError::io(store))?
            .len();
        if store_bytes > limits.journal_bytes / 2 {
            return Err(JournalError::StoreTooLarge {
                store_bytes,
                journal_bytes: limits.journal_bytes,
            });
        }
        std::fs::create_dir_all(root).map_err(JournalError::io(root))?;
        let epoch = super::epochs(root)?.last().map_or(1, |last| last + 1);
        let epoch_dir = root.join(super::epoch_name(epoch));
        std::fs::create_dir(&epoch_dir).map_err(JournalError::io(&epoch_dir))?;
        let image = epoch_dir.join(STORE_IMAGE);
        let copied = std::fs::copy(store, &image).map_err(JournalError::io(&image))?;
        debug_assert!(copied <= limits.journal_bytes, "the image fits the journal");
        let file = Self::create_segment(&epoch_dir, 0)?;
        begin.epoch = epoch;
        let mut writer = Self {
            root: root.to_owned(),
            epoch_dir,
            epoch,
            segment: 0,
            file,
            limits,
            segment_bytes: 0,
            journal_bytes: 0,
            last_time: begin.time_start,
            steps_since_mark: 0,
            full: false,
            scratch: Vec::new(),
        };
        writer.prune()?;
        writer.journal_bytes = dir_bytes(root)?;
        let json = match serde_json::to_vec(&begin) {
            Ok(json) => json,
            Err(error) => crate::kernel_bug!("a journal header did not serialize: {error}"),
        };
        let mut payload = vec![b'B'];
        payload.extend_from_slice(&json);
        writer.write_entry(&payload)?;
        writer.flush()?;
        assert!(writer.segment_bytes > 0, "an epoch begins with its header");
        Ok(writer)
    }

    fn create_segment(dir: &Path, segment: u64) -> Result<BufWriter<File>, JournalError> {
        let path = dir.join(segment_name(segment));
        let file = File::create_new(&path).map_err(JournalError::io(&path))?;
        Ok(BufWriter::with_capacity(64 << 10, file))
    }

    /// Removes whole epochs, oldest first, while the journal is over its cap (never the
    /// current one).
    fn prune(&mut self) -> Result<(), JournalError> {
        for epoch in super::epochs(&self.root)? {
            if epoch == self.epoch || dir_bytes(&self.root)? <= self.limits.journal_bytes {
                break;
            }
            let dir = self.root.join(super::epoch_name(epoch));
            std::fs::remove_dir_all(&dir).map_err(JournalError::io(&dir))?;
        }
        Ok(())
    }

    /// This epoch's number.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This epoch's directory.
    pub fn dir(&self) -> &Path {
        &self.epoch_dir
    }

    /// Whether the journal reached its cap and records nothing more.
    pub fn is_full(&self) -> bool {
        self.full
    }

    fn write_entry(&mut self, payload: &[u8]) -> Result<(), JournalError> {
        let len = match u32::try_from(payload.len()) {
            Ok(len) if len <= super::ENTRY_BYTES_MAX => len,
            _ => return Err(JournalError::EntryTooLarge(payload.len() as u64)),
        };
        debug_assert!(len > 0, "every entry has a kind byte");
        let path = || self.epoch_dir.join(segment_name(self.segment));
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&check(payload).to_le_bytes());
        self.file
            .write_all(&header)
            .and_then(|()| self.file.write_all(payload))
            .map_err(|source| JournalError::Io {
                path: path(),
                source,
            })?;
        let written = 8 + u64::from(len);
        self.segment_bytes += written;
        self.journal_bytes += written;
        Ok(())
    }

    /// Appends `input`, the next input the kernel takes; `trace` is the kernel's trace
    /// before it (marked if the journal is full and records no more).
    ///
    /// # Errors
    /// The segment could not be written or rotated.
    pub fn append(&mut self, input: &Input, trace: &Trace) -> Result<(), JournalError> {
        if self.full {
            return Ok(());
        }
        let mut payload = std::mem::take(&mut self.scratch);
        payload.clear();
        match input {
            Input::Time(reading) => {
                // The kernel ignores a reading earlier than its time; so does the journal.
                let reading = (*reading).max(self.last_time);
                payload.push(b't');
                put_varint(&mut payload, reading.nanos_since(self.last_time));
                self.last_time = reading;
            }
            Input::Step => {
                payload.push(b's');
                self.steps_since_mark += 1;
            }
            other => encode_input(other, &mut payload),
        }
        let result = self.append_payload(&payload, trace);
        self.scratch = payload;
        result
    }

    fn append_payload(&mut self, payload: &[u8], trace: &Trace) -> Result<(), JournalError> {
        let entry_bytes = 8 + payload.len() as u64;
        if self.journal_bytes + entry_bytes + 64 > self.limits.journal_bytes {
            self.full = true;
            let mut full = Vec::new();
            encode_mark(b'f', mark_of(trace), &mut full);
            self.write_entry(&full)?;
            return self.flush();
        }
        self.write_entry(payload)
    }

    /// Called once the kernel has taken the input last appended, with its trace: writes a
    /// checkpoint every [`CHECKPOINT_STEPS`] steps and rotates a full segment.
    ///
    /// # Errors
    /// The segment could not be written or rotated.
    pub fn taken(&mut self, trace: &Trace) -> Result<(), JournalError> {
        if self.full {
            return Ok(());
        }
        if self.steps_since_mark >= CHECKPOINT_STEPS {
            self.checkpoint(trace)?;
        }
        if self.segment_bytes >= self.limits.segment_bytes {
            self.rotate(trace)?;
        }
        Ok(())
    }

    /// Marks the live trace at this point: `trace` is the kernel's trace after every input
    /// appended so far.
    ///
    /// # Errors
    /// The segment could not be written.
    pub fn checkpoint(&mut self, trace: &Trace) -> Result<(), JournalError> {
        if self.full {
            return Ok(());
        }
        let mut payload = Vec::with_capacity(20);
        encode_mark(b'c', mark_of(trace), &mut payload);
        self.steps_since_mark = 0;
        self.write_entry(&payload)
    }

    fn rotate(&mut self, trace: &Trace) -> Result<(), JournalError> {
        self.checkpoint(trace)?;
        self.flush()?;
        self.segment += 1;
        self.file = Self::create_segment(&self.epoch_dir, self.segment)?;
        self.segment_bytes = 0;
        let mut payload = vec![b'S'];
        put_varint(&mut payload, self.epoch);
        put_varint(&mut payload, self.segment);
        self.write_entry(&payload)?;
        self.prune()?;
        self.journal_bytes = dir_bytes(&self.root)?;
        Ok(())
    }

    /// Writes out what the buffer holds (before anything the journaled inputs caused is let
    /// out of the node, so a killed node's journal holds at least what it answered).
    ///
    /// # Errors
    /// The segment could not be written.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        let path = self.epoch_dir.join(segment_name(self.segment));
        self.file
            .flush()
            .map_err(|source| JournalError::Io { path, source })
    }

    /// Ends the epoch at a clean shutdown: the live trace's final mark, flushed and synced.
    ///
    /// # Errors
    /// The segment could not be written or synced.
    pub fn end(mut self, trace: &Trace) -> Result<(), JournalError> {
        if !self.full {
            let mut payload = Vec::with_capacity(20);
            encode_mark(b'e', mark_of(trace), &mut payload);
            self.write_entry(&payload)?;
        }
        self.flush()?;
        let path = self.epoch_dir.join(segment_name(self.segment));
        self.file
            .get_ref()
            .sync_data()
            .map_err(|source| JournalError::Io { path, source })
    }
}

fn mark_of(trace: &Trace) -> Mark {
    Mark {
        events: trace.len(),
        hash: trace.hash(),
    }
}

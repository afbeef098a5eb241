//! A deterministic WASI preview1 shim: the second import table, beside `standard`.
//!
//! Apps built with `hyperware_process_lib` for `wasm32-wasip1` import eight functions of
//! `wasi_snapshot_preview1`; this module provides exactly those, and the module check refuses
//! any other with its name. Like every import, each call suspends the guest and is served by
//! `WasmProcess::drive` with the kernel at hand, so it happens at a deterministic point:
//!
//! - `environ_get`, `environ_sizes_get`: an empty environment;
//! - `fd_write` on fds 1 and 2: line-buffered process output, marked `stdout: ` and
//!   `stderr: ` (the last lines explain a trap, so a panic's message on fd 2 is part of the
//!   exit reason); any other fd is `EBADF`;
//! - `proc_exit`: the process ends with its code (0 returns; any other fails) and its on-exit
//!   runs as for any exit;
//! - `random_get`: the process's own seeded stream (`ProcessContext::fill_random`);
//! - `clock_time_get`: the kernel's clock, for every clock id (it never goes back);
//! - `sched_yield`: a preemption point;
//! - `poll_oneoff`: clock subscriptions put the process to sleep until the kernel's clock
//!   reaches the earliest deadline while others run; fd subscriptions are answered at once
//!   with `EBADF`.
//!
//! A bad pointer is `EFAULT`, a bad argument `EINVAL`: an errno for the guest, never a trap of
//! the kernel.

use crate::env::Timestamp;
use crate::kernel::ProcessContext;
use crate::process::Flow;
use wasmi::{FuncType, ValType};

/// The import module of WASI preview1.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// The WASI functions the shim provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WasiFunc {
    EnvironGet,
    EnvironSizesGet,
    FdWrite,
    ProcExit,
    RandomGet,
    ClockTimeGet,
    SchedYield,
    PollOneoff,
}

/// One WASI import: its name and core signature.
pub(crate) struct WasiImport {
    pub(crate) func: WasiFunc,
    pub(crate) name: &'static str,
    params: &'static [ValType],
    results: &'static [ValType],
}

impl WasiImport {
    pub(crate) fn core_type(&self) -> FuncType {
        FuncType::new(self.params.iter().copied(), self.results.iter().copied())
    }
}

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// The table, in `WasiFunc` order.
pub(crate) const IMPORTS: [WasiImport; 8] = [
    WasiImport {
        func: WasiFunc::EnvironGet,
        name: "environ_get",
        params: &[I32, I32],
        results: &[I32],
    },
    WasiImport {
        func: WasiFunc::EnvironSizesGet,
        name: "environ_sizes_get",
        params: &[I32, I32],
        results: &[I32],
    },
    WasiImport {
        func: WasiFunc::FdWrite,
        name: "fd_write",
        params: &[I32, I32, I32, I32],
        results: &[I32],
    },
    WasiImport {
        func: WasiFunc::ProcExit,
        name: "proc_exit",
        params: &[I32],
        results: &[],
    },
    WasiImport {
        func: WasiFunc::RandomGet,
        name: "random_get",
        params: &[I32, I32],
        results: &[I32],
    },
    WasiImport {
        func: WasiFunc::ClockTimeGet,
        name: "clock_time_get",
        params: &[I32, I64, I32],
        results: &[I32],
    },
    WasiImport {
        func: WasiFunc::SchedYield,
        name: "sched_yield",
        params: &[],
        results: &[I32],
    },
    WasiImport {
        func: WasiFunc::PollOneoff,
        name: "poll_oneoff",
        params: &[I32, I32, I32, I32],
        results: &[I32],
    },
];

/// The import named `name`, if the shim provides it.
pub(crate) fn import_named(name: &str) -> Option<&'static WasiImport> {
    IMPORTS.iter().find(|i| i.name == name)
}

/// The import of `func`.
pub(crate) fn import_of(func: WasiFunc) -> &'static WasiImport {
    let import = &IMPORTS[func as usize];
    debug_assert_eq!(import.func, func, "the table is in WasiFunc order");
    import
}

/// The names the shim provides, for an error that refuses another.
pub(crate) fn names() -> String {
    let names: Vec<&str> = IMPORTS.iter().map(|i| i.name).collect();
    names.join(", ")
}

/// WASI errnos the shim returns.
mod errno {
    pub(super) const SUCCESS: i32 = 0;
    pub(super) const BADF: i32 = 8;
    pub(super) const FAULT: i32 = 21;
    pub(super) const INVAL: i32 = 28;
}

/// Most iovecs one `fd_write` takes (wasi-libc's `IOV_MAX`).
const IOVS_MAX: u32 = 1024;
/// Most bytes one `fd_write` takes; more is a short write, which the guest's `write_all`
/// continues. Each call costs the guest fuel, so a flood of output is paid for.
const WRITE_LEN_MAX: u64 = 16 << 10;
/// Most subscriptions one `poll_oneoff` takes.
const SUBSCRIPTIONS_MAX: u32 = 1024;
/// Size of a WASI `subscription` and of an `event`.
const SUBSCRIPTION_LEN: u32 = 48;
const EVENT_LEN: u32 = 32;

/// A guest's output not yet ended by a newline, per fd (1 and 2).
#[derive(Default)]
pub(crate) struct OutputLines {
    pending: [Vec<u8>; 2],
}

/// A line is cut and printed at this length even without a newline.
const LINE_LEN_MAX: usize = crate::kernel::PRINT_TEXT_MAX;

impl OutputLines {
    /// Appends `bytes` written to `fd` (1 or 2) and returns the lines they completed.
    fn write(&mut self, fd: usize, bytes: &[u8]) -> Vec<String> {
        debug_assert!(fd == 1 || fd == 2, "only stdout and stderr are buffered");
        let pending = &mut self.pending[fd - 1];
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                lines.push(line(fd, pending));
                continue;
            }
            pending.push(byte);
            if pending.len() >= LINE_LEN_MAX {
                lines.push(line(fd, pending));
            }
        }
        debug_assert!(
            pending.len() < LINE_LEN_MAX,
            "a pending line stays below its cut"
        );
        lines
    }

    /// The lines not yet ended, as they are (at an exit or a trap).
    pub(crate) fn flush(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for fd in 1..=2 {
            let pending = &mut self.pending[fd - 1];
            if !pending.is_empty() {
                lines.push(line(fd, pending));
            }
        }
        lines
    }
}

fn line(fd: usize, pending: &mut Vec<u8>) -> String {
    let mark = if fd == 1 { "stdout: " } else { "stderr: " };
    let text = format!("{mark}{}", String::from_utf8_lossy(pending));
    pending.clear();
    text
}

/// The guest's linear memory, with bounds-checked reads and writes that fail as `EFAULT`.
struct Memory<'a>(&'a mut [u8]);

impl Memory<'_> {
    fn range(&self, ptr: u32, len: u64) -> Result<std::ops::Range<usize>, i32> {
        let start = u64::from(ptr);
        let end = start.checked_add(len).ok_or(errno::FAULT)?;
        if end > self.0.len() as u64 {
            return Err(errno::FAULT);
        }
        Ok(start as usize..end as usize)
    }

    fn bytes(&self, ptr: u32, len: u64) -> Result<&[u8], i32> {
        let range = self.range(ptr, len)?;
        Ok(&self.0[range])
    }

    fn bytes_mut(&mut self, ptr: u32, len: u64) -> Result<&mut [u8], i32> {
        let range = self.range(ptr, len)?;
        Ok(&mut self.0[range])
    }

    fn u32(&self, ptr: u32) -> Result<u32, i32> {
        let bytes = self.bytes(ptr, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&self, ptr: u32) -> Result<u64, i32> {
        let bytes = self.bytes(ptr, 8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(word))
    }

    fn put(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), i32> {
        self.bytes_mut(ptr, bytes.len() as u64)?
            .copy_from_slice(bytes);
        Ok(())
    }
}

/// What a served WASI call asks of the process's runtime.
pub(crate) enum Served {
    /// Resume with this errno.
    Errno(i32),
    /// Print these lines, then resume with this errno.
    Output(Vec<String>, i32),
    /// Hand control to the scheduler with this flow; resume with this errno when woken.
    Pause(Flow, i32),
    /// End the process with this exit code.
    Exit(i32),
}

/// What the shim needs of the kernel: its clock and the run's random stream.
pub(crate) trait WasiHost {
    /// The kernel's time.
    fn now(&self) -> Timestamp;
    /// Fills `buf` from the run's own random stream.
    fn fill_random(&mut self, buf: &mut [u8]);
}

impl WasiHost for ProcessContext<'_> {
    fn now(&self) -> Timestamp {
        ProcessContext::now(self)
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        ProcessContext::fill_random(self, buf);
    }
}

/// Serves `func` with its raw core `args` on the guest's `memory`.
pub(crate) fn serve(
    ctx: &mut impl WasiHost,
    memory: &mut [u8],
    output: &mut OutputLines,
    func: WasiFunc,
    args: &[u64],
) -> Served {
    let expected = import_of(func).params.len();
    if args.len() != expected {
        // The module check typed every import, so wasmi passed exactly these.
        crate::kernel_bug!(
            "{func:?} called with {} arguments, not {expected}",
            args.len()
        );
    }
    let arg = |i: usize| args[i] as u32;
    let mut memory = Memory(memory);
    let result = match func {
        WasiFunc::EnvironGet => Ok(errno::SUCCESS),
        WasiFunc::EnvironSizesGet => environ_sizes(&mut memory, arg(0), arg(1)),
        WasiFunc::FdWrite => {
            return match fd_write(&mut memory, output, arg(0), arg(1), arg(2), arg(3)) {
                Ok(lines) => Served::Output(lines, errno::SUCCESS),
                Err(errno) => Served::Errno(errno),
            };
        }
        WasiFunc::ProcExit => return Served::Exit(arg(0) as i32),
        WasiFunc::RandomGet => memory.bytes_mut(arg(0), u64::from(arg(1))).map(|buf| {
            ctx.fill_random(buf);
            errno::SUCCESS
        }),
        WasiFunc::ClockTimeGet => clock_time_get(ctx, &mut memory, arg(0), arg(2)),
        WasiFunc::SchedYield => return Served::Pause(Flow::Yield, errno::SUCCESS),
        WasiFunc::PollOneoff => {
            return match poll_oneoff(ctx, &mut memory, arg(0), arg(1), arg(2), arg(3)) {
                Ok(Some(until)) => Served::Pause(Flow::Sleep(until), errno::SUCCESS),
                Ok(None) => Served::Errno(errno::SUCCESS),
                Err(errno) => Served::Errno(errno),
            };
        }
    };
    Served::Errno(result.unwrap_or_else(|errno| errno))
}

fn environ_sizes(memory: &mut Memory<'_>, count: u32, size: u32) -> Result<i32, i32> {
    memory.put(count, &0u32.to_le_bytes())?;
    memory.put(size, &0u32.to_le_bytes())?;
    Ok(errno::SUCCESS)
}

fn fd_write(
    memory: &mut Memory<'_>,
    output: &mut OutputLines,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    nwritten: u32,
) -> Result<Vec<String>, i32> {
    let fd = match fd {
        1 | 2 => fd as usize,
        _ => return Err(errno::BADF),
    };
    if iovs_len > IOVS_MAX {
        return Err(errno::INVAL);
    }
    // Every iovec is checked before any byte is taken: a bad one writes nothing.
    let mut slices = Vec::with_capacity(iovs_len as usize);
    let mut total = 0u64;
    for i in 0..iovs_len {
        let at = iovs.checked_add(i * 8).ok_or(errno::FAULT)?;
        let (ptr, len) = (
            memory.u32(at)?,
            memory.u32(at.checked_add(4).ok_or(errno::FAULT)?)?,
        );
        memory.range(ptr, u64::from(len))?;
        let take = u64::from(len).min(WRITE_LEN_MAX - total);
        slices.push((ptr, take));
        total += take;
        if total == WRITE_LEN_MAX {
            break;
        }
    }
    memory.range(nwritten, 4)?;
    let mut lines = Vec::new();
    for (ptr, len) in slices {
        lines.extend(output.write(fd, memory.bytes(ptr, len)?));
    }
    debug_assert!(total <= WRITE_LEN_MAX, "one call writes at most its bound");
    memory.put(nwritten, &(total as u32).to_le_bytes())?;
    Ok(lines)
}

fn clock_time_get(
    ctx: &impl WasiHost,
    memory: &mut Memory<'_>,
    id: u32,
    time: u32,
) -> Result<i32, i32> {
    // realtime, monotonic, process and thread CPU time: all read the kernel's clock.
    if id > 3 {
        return Err(errno::INVAL);
    }
    memory.put(time, &ctx.now().0.to_le_bytes())?;
    Ok(errno::SUCCESS)
}

/// `(userdata, tag, deadline)` of each subscription: a clock's deadline on the kernel's clock,
/// or `None` for an fd subscription.
fn read_subscriptions(
    memory: &Memory<'_>,
    subscriptions: u32,
    count: u32,
    now: Timestamp,
) -> Result<Vec<(u64, u8, Option<Timestamp>)>, i32> {
    let mut subs = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = subscriptions + i * SUBSCRIPTION_LEN;
        let userdata = memory.u64(at)?;
        let tag = memory.bytes(at + 8, 1)?[0];
        let deadline = match tag {
            0 => {
                let timeout = memory.u64(at + 24)?;
                let absolute = memory.bytes(at + 40, 2)?[0] & 1 == 1;
                Some(if absolute {
                    Timestamp(timeout)
                } else {
                    Timestamp(now.0.saturating_add(timeout))
                })
            }
            1 | 2 => None,
            _ => return Err(errno::INVAL),
        };
        subs.push((userdata, tag, deadline));
    }
    debug_assert_eq!(subs.len(), count as usize, "one entry per subscription");
    Ok(subs)
}

/// Reads the subscriptions, writes the events of those that are due first, and returns the
/// instant to sleep until (`None`: the events are ready now).
fn poll_oneoff(
    ctx: &impl WasiHost,
    memory: &mut Memory<'_>,
    subscriptions: u32,
    events: u32,
    count: u32,
    nevents: u32,
) -> Result<Option<Timestamp>, i32> {
    if count == 0 || count > SUBSCRIPTIONS_MAX {
        return Err(errno::INVAL);
    }
    let now = ctx.now();
    memory.range(
        subscriptions,
        u64::from(count) * u64::from(SUBSCRIPTION_LEN),
    )?;
    memory.range(events, u64::from(count) * u64::from(EVENT_LEN))?;
    memory.range(nevents, 4)?;
    let subs = read_subscriptions(memory, subscriptions, count, now)?;
    let fd_waits = subs.iter().any(|(_, _, deadline)| deadline.is_none());
    let first = subs.iter().filter_map(|(_, _, d)| *d).min();
    let mut written = 0u32;
    for (userdata, tag, deadline) in &subs {
        // Fd subscriptions are answered at once (there are no fds to wait on); clocks fire
        // when the earliest deadline comes, unless an fd answer ends the poll first.
        let (fires, error) = match deadline {
            None => (true, errno::BADF as u16),
            Some(deadline) => (!fd_waits && Some(*deadline) == first, 0),
        };
        if !fires {
            continue;
        }
        let at = events + written * EVENT_LEN;
        let mut event = [0u8; EVENT_LEN as usize];
        event[..8].copy_from_slice(&userdata.to_le_bytes());
        event[8..10].copy_from_slice(&error.to_le_bytes());
        event[10] = *tag;
        memory.put(at, &event)?;
        written += 1;
    }
    debug_assert!(
        written >= 1 && written <= count,
        "a poll reports what ended it"
    );
    memory.put(nevents, &written.to_le_bytes())?;
    Ok(if fd_waits {
        None
    } else {
        first.filter(|d| *d > now)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_func_order_and_names_are_unique() {
        for (index, import) in IMPORTS.iter().enumerate() {
            assert_eq!(import.func as usize, index, "{}", import.name);
            assert_eq!(import_named(import.name).map(|i| i.func), Some(import.func));
        }
        assert!(import_named("fd_read").is_none());
        assert_eq!(
            import_of(WasiFunc::ClockTimeGet).core_type(),
            FuncType::new([I32, I64, I32], [I32])
        );
    }

    #[test]
    fn output_is_cut_into_marked_lines_and_flushed_at_the_end() {
        let mut output = OutputLines::default();
        assert_eq!(output.write(1, b"one\ntw"), vec!["stdout: one"]);
        assert_eq!(output.write(2, b"err\n"), vec!["stderr: err"]);
        assert_eq!(output.write(1, b"o\n"), vec!["stdout: two"]);
        assert!(output.write(1, b"tail").is_empty());
        assert_eq!(output.flush(), vec!["stdout: tail"]);
        assert!(output.flush().is_empty());
        let long = vec![b'x'; LINE_LEN_MAX + 10];
        let lines = output.write(2, &long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), "stderr: ".len() + LINE_LEN_MAX);
        assert_eq!(output.flush(), vec![format!("stderr: {}", "x".repeat(10))]);
    }

    #[test]
    fn memory_refuses_what_is_out_of_bounds() {
        let mut bytes = vec![0u8; 16];
        let mut memory = Memory(&mut bytes);
        assert_eq!(memory.u32(12), Ok(0));
        assert_eq!(memory.u32(13), Err(errno::FAULT));
        assert_eq!(memory.u64(u32::MAX), Err(errno::FAULT));
        assert_eq!(memory.put(15, &[1, 2]), Err(errno::FAULT));
        assert_eq!(memory.put(14, &[1, 2]), Ok(()));
        assert_eq!(memory.bytes(14, 2), Ok(&[1u8, 2][..]));
    }
}

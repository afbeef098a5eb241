//! The node's console: where the operator's lines come from and where the node's lines go.
//!
//! On a terminal (stdin and stdout both ttys) lines are read with a line editor (rustyline:
//! editing keys, history kept in the home's `history` file, appended after every line so a
//! killed node loses none) and everything the node prints goes through the editor's printer,
//! so output never tears the line being typed. Ctrl-C at the prompt is the same as SIGINT: the
//! first shuts the node down gracefully, a second exits at once. The terminal's mode is saved
//! before the editor takes it and put back on every way out. Piped stdin is read line by line.

use crate::Outside;
use crate::bounded::LINE_BYTES_MAX;
use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, mpsc};

/// History entries kept, the oldest dropped first.
pub(crate) const HISTORY_MAX: usize = 1000;
/// Largest history file read (1000 lines of up to 4 KiB).
const HISTORY_BYTES_MAX: u64 = 4 << 20;
/// The prompt.
const PROMPT: &str = "> ";

/// The editor's printer once the editor runs: lines printed through it keep the prompt whole.
static PRINTER: OnceLock<Mutex<Box<dyn ExternalPrinter + Send>>> = OnceLock::new();
/// The terminal's mode before the editor took it, put back by [`restore`].
static SAVED_MODE: Mutex<Option<nix::sys::termios::Termios>> = Mutex::new(None);
/// Interrupts seen (Ctrl-C at the prompt, SIGINT, SIGTERM).
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Prints `text` (one or more lines) to the operator: through the editor's printer when it
/// runs, else to stdout. A closed or failing stdout is ignored (a daemon whose reader went
/// away must not panic in `println!`).
pub(crate) fn say(text: &str) {
    if let Some(printer) = PRINTER.get() {
        let mut printer = printer.lock().unwrap_or_else(PoisonError::into_inner);
        if printer.print(format!("{text}\n")).is_ok() {
            return;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// [`say`] for errors: stderr, or the editor's printer on a terminal (stderr is the same tty).
pub(crate) fn esay(text: &str) {
    if PRINTER.get().is_some() {
        return say(text);
    }
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// An interrupt: the first calls `stop`, a second exits the process at once (every committed
/// step is in the store, so nothing committed is lost), the terminal's mode put back first.
pub(crate) fn interrupt(stop: impl FnOnce()) {
    if INTERRUPTS.fetch_add(1, Ordering::SeqCst) > 0 {
        restore();
        std::process::exit(130);
    }
    stop();
}

/// Puts the terminal's mode back as it was before the editor took it (idempotent).
pub(crate) fn restore() {
    let saved = SAVED_MODE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(mode) = saved {
        // The editor's half-typed line stays on screen: end it.
        let _ = std::io::stdout().write_all(b"\r\n");
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSADRAIN,
            &mode,
        );
    }
}

/// Whether the operator is at a terminal, so the line editor runs.
pub(crate) fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Reads the operator's lines into `tx` until stdin ends: with the line editor and the
/// history file `history` on a terminal, else plainly.
pub(crate) fn read_lines(tx: &mpsc::Sender<Outside>, history: PathBuf) {
    if on_terminal() {
        let history = match is_usable_history(&history) {
            Ok(()) => Some(history),
            Err(reason) => {
                esay(&format!(
                    "error: the history {}: {reason}; lines are not kept",
                    history.display()
                ));
                None
            }
        };
        match editor(history.as_deref()) {
            Ok(editor) => return edit_lines(editor, tx, history.as_deref()),
            Err(error) => esay(&format!(
                "error: the line editor: {error}; reading plain lines"
            )),
        }
    }
    let mut stdin = std::io::stdin().lock();
    while let Ok(Some(line)) = crate::bounded::read_line(&mut stdin, LINE_BYTES_MAX) {
        let line = match line {
            Ok(line) => line,
            Err(bytes) => {
                esay(&format!(
                    "error: a line of {bytes} bytes was refused; a line is at most \
                     {LINE_BYTES_MAX}"
                ));
                continue;
            }
        };
        if tx.send(Outside::Line(line)).is_err() {
            return;
        }
    }
    let _ = tx.send(Outside::Eof);
}

/// Whether `history` may be read and appended to: missing, or a regular file (not a FIFO
/// or a device the editor would wait on or read for ever) of at most [`HISTORY_BYTES_MAX`].
fn is_usable_history(history: &Path) -> Result<(), String> {
    match std::fs::metadata(history) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error.to_string()),
        Ok(metadata) if !metadata.is_file() => Err("not a regular file".into()),
        Ok(metadata) if metadata.len() > HISTORY_BYTES_MAX => Err(format!(
            "{} bytes, over the bound of {HISTORY_BYTES_MAX}",
            metadata.len()
        )),
        Ok(_) => Ok(()),
    }
}

/// The editor, its history loaded and its printer installed; the terminal's mode saved.
fn editor(history: Option<&Path>) -> Result<DefaultEditor, ReadlineError> {
    let config = Config::builder()
        .max_history_size(HISTORY_MAX)?
        .history_ignore_dups(true)?
        .auto_add_history(true)
        .build();
    let mut editor = DefaultEditor::with_config(config)?;
    match history.map(|history| (history, editor.load_history(history))) {
        None | Some((_, Ok(()))) => {}
        Some((_, Err(ReadlineError::Io(error))))
            if error.kind() == std::io::ErrorKind::NotFound => {}
        Some((history, Err(error))) => esay(&format!(
            "error: the history {}: {error}; starting with none",
            history.display()
        )),
    }
    if let Ok(mode) = nix::sys::termios::tcgetattr(std::io::stdin()) {
        *SAVED_MODE.lock().unwrap_or_else(PoisonError::into_inner) = Some(mode);
    }
    let printer = editor.create_external_printer()?;
    let _ = PRINTER.set(Mutex::new(Box::new(printer)));
    Ok(editor)
}

fn edit_lines(mut editor: DefaultEditor, tx: &mpsc::Sender<Outside>, history: Option<&Path>) {
    let mut history_failed = false;
    loop {
        let sent = match editor.readline(PROMPT) {
            Ok(line) if line.len() > LINE_BYTES_MAX => {
                esay(&format!(
                    "error: a line of {} bytes was refused; a line is at most {LINE_BYTES_MAX}",
                    line.len()
                ));
                true
            }
            Ok(line) => {
                if let Some(history) = history
                    && let Err(error) = editor.append_history(history)
                    && !history_failed
                {
                    history_failed = true;
                    esay(&format!(
                        "error: the history {}: {error}; lines are not kept",
                        history.display()
                    ));
                }
                tx.send(Outside::Line(line)).is_ok()
            }
            Err(ReadlineError::Interrupted) => {
                interrupt(|| drop(tx.send(Outside::Stop)));
                true
            }
            Err(ReadlineError::Eof) => {
                let _ = tx.send(Outside::Eof);
                return;
            }
            Err(error) => {
                esay(&format!("error: the terminal: {error}"));
                let _ = tx.send(Outside::Eof);
                return;
            }
        };
        if !sent {
            return;
        }
    }
}

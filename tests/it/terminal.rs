//! The node's terminal on a real pseudo-terminal, typed at as a person types: the line
//! editor's keys (backspace, the up arrow through history), history kept in the home across
//! boots, `clear-state`, Ctrl-C for a graceful shutdown and a second Ctrl-C for an immediate
//! exit, and the terminal's mode put back as it was when the node exits.

use crate::wasm::guest;
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::termios::{LocalFlags, tcgetattr};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const COUNTER: &str = "test.os@counter:app:test.os";
const UP: &str = "\x1b[A";
const BACKSPACE: &str = "\x7f";
const CTRL_C: &str = "\x03";

/// A node whose stdin, stdout and stderr are a pseudo-terminal's far end.
struct Tty {
    child: Child,
    master: File,
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Everything the node wrote, escapes included.
    screen: String,
    /// How far `expect` has read.
    read: usize,
}

impl Tty {
    fn start(home: &Path) -> Self {
        let size = Winsize {
            ws_row: 40,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let OpenptyResult { master, slave } = openpty(Some(&size), None).unwrap();
        let slave = File::from(slave);
        let child = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
            .args([
                "node",
                "--home",
                home.to_str().unwrap(),
                "--name",
                "test.os",
            ])
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .unwrap();
        let master = File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, chunks) = mpsc::channel();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test reads the terminal on a thread of its own"
        )]
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            // Reading fails (EIO) once the node has exited and closed its end.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                if tx.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut tty = Self {
            child,
            master,
            chunks,
            screen: String::new(),
            read: 0,
        };
        tty.expect("node test.os ");
        tty.expect("> ");
        tty
    }

    /// Types `keys` as they are (no Enter added).
    fn keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Types `line` and Enter.
    fn line(&mut self, line: &str) {
        self.keys(&format!("{line}\r"));
    }

    /// Waits until the node has written `text` after what was already read; reads past it.
    fn expect(&mut self, text: &str) {
        loop {
            if let Some(at) = self.screen[self.read..].find(text) {
                self.read += at + text.len();
                return;
            }
            match self.chunks.recv_timeout(WAIT) {
                Ok(chunk) => self.screen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!(
                    "the terminal never showed {text:?}; after what was read it shows {:?}",
                    &self.screen[self.read..]
                ),
            }
        }
    }

    /// The count the counter answers next.
    fn count(&mut self) -> u64 {
        self.expect(&format!("< {COUNTER}: "));
        loop {
            let rest = &self.screen[self.read..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && rest.len() > digits.len() {
                self.read += digits.len();
                return digits.parse().unwrap();
            }
            let chunk = self.chunks.recv_timeout(WAIT).unwrap();
            self.screen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for the exit; its code, and whether the terminal is back in its line mode
    /// (canonical input with echo), as the node found it.
    fn exit(mut self) -> (i32, bool) {
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let mode = tcgetattr(&self.master).unwrap();
        let cooked = mode
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO);
        (code, cooked)
    }
}

#[test]
fn the_terminal_edits_lines_keeps_history_across_boots_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let wasm = dir.path().join("counter.wasm");
    std::fs::write(&wasm, guest("counter")).unwrap();

    let mut tty = Tty::start(&home);
    tty.line(&format!("load {} counter:app:test.os", wasm.display()));
    tty.expect("\"StartedProcess\"");
    tty.line(&format!("m {COUNTER} inc"));
    assert_eq!(tty.count(), 1);
    // The up arrow brings the last line back; Enter sends it again.
    tty.keys(UP);
    tty.line("");
    assert_eq!(tty.count(), 2);
    // A typo corrected with backspace before Enter.
    tty.line(&format!("hepl{BACKSPACE}{BACKSPACE}lp"));
    tty.expect("clear-state PROCESS");
    tty.keys(CTRL_C);
    tty.expect("shut down");
    assert_eq!(
        tty.exit(),
        (0, true),
        "exit 0 with the terminal's mode back"
    );
    let history = std::fs::read_to_string(home.join("history")).unwrap();
    assert!(history.contains(&format!("m {COUNTER} inc")), "{history}");

    // The next boot has the history: up twice is the `m` line (the repeat is kept once).
    let mut tty = Tty::start(&home);
    tty.keys(&format!("{UP}{UP}"));
    tty.line("");
    assert_eq!(tty.count(), 3, "the counter's state survived the boot");
    tty.line("clear-state ghost:app:test.os");
    tty.expect("error: no such process ghost:app:test.os");
    tty.line("clear-state counter:app:test.os");
    tty.expect("cleared the saved state of counter:app:test.os");
    tty.line("shutdown");
    tty.expect("shut down");
    assert_eq!(tty.exit(), (0, true));

    // Cleared: the counter starts again from nothing.
    let mut tty = Tty::start(&home);
    tty.line("clear-state counter:app:test.os");
    tty.expect("counter:app:test.os has no saved state");
    tty.line(&format!("m {COUNTER} inc"));
    assert_eq!(tty.count(), 1);
    // Two Ctrl-Cs at once: the second exits without waiting; the store stays whole.
    tty.keys(&format!("{CTRL_C}{CTRL_C}"));
    let (code, cooked) = tty.exit();
    assert!(code == 130 || code == 0, "exit code {code}");
    assert!(
        cooked,
        "the terminal's mode is back after the immediate exit"
    );
    let mut tty = Tty::start(&home);
    tty.line(&format!("m {COUNTER} inc"));
    assert_eq!(
        tty.count(),
        2,
        "what was acknowledged before the exit is kept"
    );
    tty.keys(CTRL_C);
    assert_eq!(tty.exit(), (0, true));
}

/// SECURITY.md, terminal: a history that is a FIFO (the editor waited on it for ever), a
/// device (/dev/zero: read until memory ran out) or one over-long line is not read; the node
/// says why, keeps no history, and takes lines.
#[test]
fn a_history_that_is_a_fifo_a_device_or_too_large_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut tty = Tty::start(&home);
    tty.line("shutdown");
    tty.expect("shut down");
    assert_eq!(tty.exit(), (0, true));
    let history = home.join("history");
    let big = vec![b'x'; 5 << 20];
    for (make, reason) in [
        (0, "not a regular file"),
        (1, "not a regular file"),
        (2, "over the bound"),
    ] {
        let _ = std::fs::remove_file(&history);
        match make {
            0 => assert!(
                Command::new("mkfifo")
                    .arg(&history)
                    .status()
                    .unwrap()
                    .success()
            ),
            1 => std::os::unix::fs::symlink("/dev/zero", &history).unwrap(),
            _ => std::fs::write(&history, &big).unwrap(),
        }
        let mut tty = Tty::start(&home);
        // Said before the prompt, or after it.
        if !tty.screen.contains(reason) {
            tty.expect(reason);
        }
        tty.line("top");
        tty.expect("kernel:distro:sys");
        tty.line("shutdown");
        tty.expect("shut down");
        assert_eq!(tty.exit(), (0, true), "{reason}");
    }
}

//! The node's terminal lines: what a user types, parsed into a [`Line`], or a [`LineError`]
//! saying what is wrong with it. Nothing here touches the kernel.

use crate::types::{Address, ProcessId};
use crate::wire::KernelCommand;
use std::fmt;
use std::path::PathBuf;

/// One terminal line, understood.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// Nothing typed.
    Empty,
    /// `help`.
    Help,
    /// `top [PROCESS]`.
    Top(Option<ProcessId>),
    /// `caps PROCESS`.
    Caps(ProcessId),
    /// `m ADDRESS BODY`: a request expecting an answer within 5 s.
    Message {
        /// Where.
        to: Address,
        /// The body (text or JSON, sent as typed).
        body: String,
    },
    /// `load PATH ID`: store the wasm file as `ID`'s code and start it.
    Load {
        /// The wasm file.
        path: PathBuf,
        /// The new process.
        id: ProcessId,
    },
    /// `kill PROCESS`.
    Kill(ProcessId),
    /// `clear-state PROCESS`: delete its saved state.
    ClearState(ProcessId),
    /// `verbosity N`: show process prints up to N (0 to 3).
    Verbosity(u8),
    /// `shutdown`.
    Shutdown,
    /// Any `KernelCommand` as JSON.
    Command(Box<KernelCommand>),
}

/// Why a line was not understood.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
    /// The first word is no command.
    Unknown(String),
    /// The command lacks an argument.
    Missing {
        /// The command.
        command: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// An argument does not parse.
    Bad {
        /// What it should be.
        what: &'static str,
        /// Why it is not.
        why: String,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(word) => write!(f, "unknown command {word:?} (try `help`)"),
            Self::Missing { command, needs } => write!(f, "`{command}` needs {needs}"),
            Self::Bad { what, why } => write!(f, "not {what}: {why}"),
        }
    }
}

impl std::error::Error for LineError {}

/// What `help` prints.
pub const HELP: &str = "\
m ADDRESS BODY       send BODY (text or JSON) to ADDRESS and print the answer
top [PROCESS]        the process map, or one process
caps PROCESS         the capabilities PROCESS holds
load PATH ID         store the wasm file PATH as ID's code and start it (on exit: Restart)
kill PROCESS         stop PROCESS and revoke what it issued
clear-state PROCESS  delete PROCESS's saved state (it starts without it when next started)
verbosity N          show process prints up to verbosity N (0 to 3)
{...}                any KernelCommand as JSON, answered with its KernelResponse
shutdown             commit, sync and stop the node (also Ctrl-C or SIGTERM)
help                 this";

fn process(command: &'static str, word: Option<&str>) -> Result<ProcessId, LineError> {
    let word = word.ok_or(LineError::Missing {
        command,
        needs: "a process id",
    })?;
    word.parse()
        .map_err(|e: crate::types::AddressParseError| LineError::Bad {
            what: "a process id",
            why: e.to_string(),
        })
}

/// Parses one line.
///
/// # Errors
/// What is wrong with it.
pub fn parse(line: &str) -> Result<Line, LineError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Line::Empty);
    }
    if line.starts_with('{') {
        let command = serde_json::from_str(line).map_err(|e| LineError::Bad {
            what: "a KernelCommand",
            why: e.to_string(),
        })?;
        return Ok(Line::Command(Box::new(command)));
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let mut args = rest.split_whitespace();
    match word {
        "help" => Ok(Line::Help),
        "shutdown" => Ok(Line::Shutdown),
        "top" => Ok(Line::Top(
            args.next().map(|w| process("top", Some(w))).transpose()?,
        )),
        "caps" => Ok(Line::Caps(process("caps", args.next())?)),
        "kill" => Ok(Line::Kill(process("kill", args.next())?)),
        "clear-state" => Ok(Line::ClearState(process("clear-state", args.next())?)),
        "verbosity" => {
            let word = args.next().ok_or(LineError::Missing {
                command: "verbosity",
                needs: "a level from 0 to 3",
            })?;
            match word.parse::<u8>() {
                Ok(level) if level <= 3 => Ok(Line::Verbosity(level)),
                _ => Err(LineError::Bad {
                    what: "a level from 0 to 3",
                    why: format!("{word:?}"),
                }),
            }
        }
        "m" => {
            let (to, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if to.is_empty() {
                return Err(LineError::Missing {
                    command: "m",
                    needs: "an address and a body",
                });
            }
            let to = to
                .parse()
                .map_err(|e: crate::types::AddressParseError| LineError::Bad {
                    what: "an address",
                    why: e.to_string(),
                })?;
            Ok(Line::Message {
                to,
                body: body.trim().to_owned(),
            })
        }
        "load" => {
            let path = args.next().ok_or(LineError::Missing {
                command: "load",
                needs: "a wasm file and a process id",
            })?;
            let id = process("load", args.next())?;
            Ok(Line::Load {
                path: PathBuf::from(path),
                id,
            })
        }
        other => Err(LineError::Unknown(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_what_they_say() {
        assert_eq!(parse("  "), Ok(Line::Empty));
        assert_eq!(parse("top"), Ok(Line::Top(None)));
        assert!(
            matches!(parse("m a.os@p:k:s hello there"), Ok(Line::Message { body, .. }) if body == "hello there")
        );
        assert!(matches!(
            parse(r#"{"RunProcess":"p:k:s"}"#),
            Ok(Line::Command(_))
        ));
        assert_eq!(parse("verbosity 2"), Ok(Line::Verbosity(2)));
        assert!(matches!(
            parse("clear-state counter:app:a.os"),
            Ok(Line::ClearState(id)) if id.as_str() == "counter:app:a.os"
        ));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(
            parse("frobnicate"),
            Err(LineError::Unknown("frobnicate".into()))
        );
        assert!(matches!(
            parse("m"),
            Err(LineError::Missing { command: "m", .. })
        ));
        assert!(matches!(
            parse("m nowhere hi"),
            Err(LineError::Bad {
                what: "an address",
                ..
            })
        ));
        assert!(matches!(parse("verbosity 9"), Err(LineError::Bad { .. })));
        assert!(matches!(
            parse("{not json"),
            Err(LineError::Bad {
                what: "a KernelCommand",
                ..
            })
        ));
        assert!(matches!(
            parse("caps"),
            Err(LineError::Missing {
                command: "caps",
                ..
            })
        ));
        assert!(matches!(
            parse("clear-state"),
            Err(LineError::Missing {
                command: "clear-state",
                ..
            })
        ));
    }
}

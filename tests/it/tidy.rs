//! Tidy: the style rules that tools can check (style.md). Every Rust file opens with a `//!`
//! comment saying what it owns; no function is longer than `FUNCTION_LINES_MAX` lines (a
//! ratchet: the allowance only goes down); no file is longer than `FILE_LINES_MAX` lines.

use std::path::{Path, PathBuf};

/// Longest function allowed, in lines from `fn` to its closing brace.
const FUNCTION_LINES_MAX: usize = 70;
/// Longest file allowed.
const FILE_LINES_MAX: usize = 1000;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // Build output (the fuzz crate's own `target`) is not source.
        if path.file_name().is_some_and(|name| name == "target") {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "sim/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "found the sources: {}", files.len());
    files
}

/// (name, length) of each function: from its `fn` line to the closing brace at the same
/// indentation (rustfmt layout).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_fn = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn "]
            .iter()
            .any(|p| trimmed.starts_with(p));
        if !is_fn || trimmed.ends_with(';') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let closing = " ".repeat(indent) + "}";
        if let Some(end) = lines[start..].iter().position(|l| *l == closing) {
            out.push((trimmed.chars().take(60).collect(), end + 1));
        }
    }
    out
}

#[test]
fn every_rust_file_opens_with_a_module_comment() {
    for path in sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must open with a //! comment",
            path.display()
        );
    }
}

#[test]
fn functions_and_files_stay_within_their_size_limits() {
    let mut too_long = Vec::new();
    for path in sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().count() <= FILE_LINES_MAX,
            "{} is over {FILE_LINES_MAX} lines: split it",
            path.display()
        );
        for (name, length) in function_lengths(&text) {
            if length > FUNCTION_LINES_MAX {
                too_long.push(format!("{}: {name} ({length} lines)", path.display()));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "functions over {FUNCTION_LINES_MAX} lines:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn the_length_counter_measures_a_known_function() {
    let text = "//! x\nfn short() {\n    one();\n}\n";
    assert_eq!(
        function_lengths(text),
        vec![("fn short() {".to_string(), 3)]
    );
}

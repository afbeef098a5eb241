//! The app sections of a scenario: packages, kit test packages and expected outcomes
//! (`crate::node::apps` installs, runs and judges them).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A package to install.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Its directory (holding `metadata.json` and `pkg/`), relative to the scenario file.
    pub path: PathBuf,
    /// Whether its processes run (kit's `run`); on by default.
    #[serde(default = "yes")]
    pub run: bool,
}

fn yes() -> bool {
    true
}

/// Test packages for the tester.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TestsSpec {
    /// Test package directories, relative to the scenario file, run in order.
    pub packages: Vec<PathBuf>,
    /// Simulated seconds each test has to answer `Run`.
    pub timeout_secs: u64,
    /// The nodes the `Run` request names, in order (none: the tests' own node only); a test
    /// group of several nodes names them all, as kit does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// App-level outcomes a run must show.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Patterns a process's output must (or, with `absent`, must not) match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<OutputSpec>,
    /// Processes running at the end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<String>,
    /// Processes that have exited by the end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exited: Vec<String>,
}

/// One output expectation.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The process, `name:package:publisher`.
    pub process: String,
    /// A regular expression some line it printed must match.
    pub matches: String,
    /// Instead: no line may match.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

//! The `sim` binary (issue 4).
fn main() {}

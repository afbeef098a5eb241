//! Routing benchmark (written below).
fn main() {}

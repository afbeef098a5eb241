//! What a run is checked against besides the kernel's own invariants: the harness's
//! invariants after every step (durability, answers, the trace) and the oracle that every
//! capability held came by its issuer's rules.

pub mod invariants;
pub mod provenance;

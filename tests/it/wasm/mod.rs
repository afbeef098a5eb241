//! WASM processes end to end: real guests from `guests/`, run by the kernel on wasmi.

mod guests;
mod host;
mod lifecycle;
mod loading;
mod spawn;

pub use guests::guest;

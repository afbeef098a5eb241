//! WASM processes end to end: real guests from `guests/`, run by the kernel on wasmi.

mod guests;
mod loading;
mod lifecycle;

pub use guests::guest;

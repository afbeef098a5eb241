//! A package directory through Package::read (`hyperkernel_sim::tools::fuzzing::package_dir`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel_sim::tools::fuzzing::package_dir(data);
});

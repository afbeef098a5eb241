//! The command JSON parser, alone and inside the kernel: each line of the input the body of a
//! request to `kernel:distro:sys` from a client holding the kernel's capability, and what
//! follows a zero byte the blob of each (code for `InitializeProcess`, loaded by the real wasm
//! loader). Nothing panics; what parses writes back to JSON that parses to the same command;
//! after every command the kernel keeps every invariant.
#![no_main]

use hyperkernel::{
    Capability, KernelBuilder, KernelCommand, KernelConfig, LazyLoadBlob, ProcessId, Request,
    TraceLevel, WasmConfig, WasmLoader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The body, then after a zero byte (which JSON never holds) the request's blob: code for
    // InitializeProcess.
    let (body, blob) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    if let Ok(command) = serde_json::from_slice::<KernelCommand>(body) {
        let written = serde_json::to_vec(&command).expect("a command writes");
        let again: KernelCommand =
            serde_json::from_slice(&written).expect("a written command parses");
        assert_eq!(again, command, "a command changed on its way back");
    }
    let blob = blob.map(|bytes| LazyLoadBlob {
        mime: None,
        bytes: bytes.to_vec(),
    });
    let config = KernelConfig {
        trace_level: TraceLevel::Hash,
        inbox_bytes_max: 1 << 22,
        mailbox_bytes_max: 1 << 22,
        ..KernelConfig::new("our.os", 1)
    };
    // Code in a blob is loaded for real: a seed of valid wasm gets mutated into modules.
    let loader = WasmLoader::new(WasmConfig::default()).expect("a loader");
    let mut kernel = KernelBuilder::new("our.os", 1)
        .config(config)
        .loader(Box::new(loader))
        .build()
        .expect("a fresh in-memory kernel boots");
    let client: ProcessId = "client:fuzz:our.os".parse().expect("an id");
    let target: ProcessId = "target:fuzz:our.os".parse().expect("an id");
    let kernel_cap = Capability::messaging("our.os@kernel:distro:sys".parse().expect("an address"));
    kernel
        .harness()
        .register_driven(&client, &[kernel_cap], true)
        .expect("a client");
    kernel
        .harness()
        .register_driven(&target, &[], false)
        .expect("a target");
    // One command per line, each a request with the blob, run to completion in turn.
    for line in body.split(|&b| b == b'\n').take(16) {
        let request = Request::new(line.to_vec()).expecting(5);
        let address = "our.os@kernel:distro:sys".parse().expect("an address");
        if kernel
            .harness()
            .send_as(&client, address, request, None, blob.clone())
            .is_err()
        {
            break; // The kernel shut down, or the client was killed.
        }
        kernel.harness().run_steps(10_000);
        kernel
            .check_invariants()
            .unwrap_or_else(|broken| panic!("invariant broken: {broken}"));
    }
    kernel
        .check_invariants()
        .unwrap_or_else(|broken| panic!("invariant broken: {broken}"));
});

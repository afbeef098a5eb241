//! Helpers for processes written against `wit/process.wit`: the generated bindings, a panic
//! hook that prints through `print-to-terminal` (a wasm32 panic is otherwise silent), and
//! short builders for requests and responses in the spirit of process_lib.
//!
//! A process implements `Guest` and exports itself with `hyperkernel_guest::export_process!`.

#[cfg(all(feature = "fast-alloc", not(target_feature = "atomics")))]
pub mod alloc;

/// Every guest built with this crate allocates through size classes (`alloc.rs`).
#[cfg(all(feature = "fast-alloc", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();

/// The bindings wit-bindgen generates for world `process-v1`.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "process-v1",
        default_bindings_module: "hyperkernel_guest::bindings",
        pub_export_macro: true,
        export_macro_name: "export_process",
        generate_all,
    });
}

pub use bindings::hyperware::process::standard::*;
pub use bindings::{Guest, export_process};

/// Prints `PANIC: <message>` at verbosity 0 on panic, so the kernel can record why the process
/// ended. Call it first thing in `init`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        print_to_terminal(0, &format!("PANIC: {info}"));
    }));
}

/// A request with `body`, nothing inherited, no response expected.
pub fn request(body: impl Into<Vec<u8>>) -> Request {
    Request {
        inherit: false,
        expects_response: None,
        body: body.into(),
        metadata: None,
        capabilities: Vec::new(),
    }
}

/// A response with `body`.
pub fn response(body: impl Into<Vec<u8>>) -> Response {
    Response {
        inherit: false,
        body: body.into(),
        metadata: None,
        capabilities: Vec::new(),
    }
}

/// Answers the request being handled with `body`.
pub fn respond(body: impl Into<Vec<u8>>) {
    send_response(&response(body), None);
}

/// The address of `process` on our node.
pub fn local(process: &str, package: &str, publisher: &str) -> Address {
    Address {
        node: our().node,
        process: ProcessId {
            process_name: process.into(),
            package_name: package.into(),
            publisher_node: publisher.into(),
        },
    }
}

/// `node@process:package:publisher`.
pub fn address_text(address: &Address) -> String {
    let p = &address.process;
    format!(
        "{}@{}:{}:{}",
        address.node, p.process_name, p.package_name, p.publisher_node
    )
}

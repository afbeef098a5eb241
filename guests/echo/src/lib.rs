//! Echo: answers every request with its body, metadata and blob. The body `exit` makes `init`
//! return; `panic` panics (through the helper's hook).
use hyperkernel_guest::{self as hk, Guest, Message, Response};

struct Echo;

impl Guest for Echo {
    fn init(_our: String) {
        hk::install_panic_hook();
        hk::print_to_terminal(1, "echo: ready");
        loop {
            let Ok((_source, Message::Request(request))) = hk::receive() else {
                continue;
            };
            match request.body.as_slice() {
                b"exit" => return,
                b"panic" => panic!("asked to panic"),
                _ => {}
            }
            let blob = hk::get_blob();
            let answer = Response {
                inherit: false,
                body: request.body,
                metadata: request.metadata,
                capabilities: Vec::new(),
            };
            hk::send_response(&answer, blob.as_ref());
        }
    }
}

hk::export_process!(Echo);

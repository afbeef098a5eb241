//! Counter: keeps a count in its state (`get-state`/`set-state`), so it survives restarts.
//! `inc` adds one and answers the new count; `get` answers it; `reset` clears the state.
use hyperkernel_guest::{self as hk, Guest, Message};

struct Counter;

fn load() -> u64 {
    hk::get_state()
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

impl Guest for Counter {
    fn init(_our: String) {
        hk::install_panic_hook();
        let mut count = load();
        loop {
            let Ok((_source, Message::Request(request))) = hk::receive() else {
                continue;
            };
            match request.body.as_slice() {
                b"inc" => {
                    count += 1;
                    hk::set_state(&count.to_le_bytes());
                }
                b"reset" => {
                    count = 0;
                    hk::clear_state();
                }
                b"crash" => panic!("counter asked to crash at {count}"),
                _ => {}
            }
            hk::respond(count.to_string());
        }
    }
}

hk::export_process!(Counter);

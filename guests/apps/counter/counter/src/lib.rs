//! Counter: keeps a count in its state across restarts and counts timer ticks.
//!
//! Requests (JSON): `{"Add": N}` adds N and answers `{"Count": total}`; `"Get"` answers the
//! count; `{"Tick": MS}` (no answer) sets a timer that adds one when it fires.
use hyperware_process_lib::{
    Address, Message, Response, await_message, call_init, get_state, set_state, timer,
};
use serde::{Deserialize, Serialize};

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "process-v1",
});

#[derive(Debug, Serialize, Deserialize)]
enum CounterRequest {
    Add(u64),
    Get,
    Tick(u64),
}

#[derive(Debug, Serialize, Deserialize)]
enum CounterResponse {
    Count(u64),
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    count: u64,
    /// The count when the pending tick was set (the planted bug uses it).
    at_tick: u64,
}

fn save(state: &State) {
    set_state(&serde_json::to_vec(state).unwrap_or_default());
}

fn answer(count: u64) {
    let _ = Response::new()
        .body(serde_json::to_vec(&CounterResponse::Count(count)).unwrap_or_default())
        .send();
}

fn handle(state: &mut State, message: &Message) {
    if !message.is_request() {
        // A timer fired: the tick it was set for.
        state.count = if cfg!(feature = "planted-bug") {
            state.at_tick + 1
        } else {
            state.count + 1
        };
        save(state);
        return;
    }
    match serde_json::from_slice::<CounterRequest>(message.body()) {
        Ok(CounterRequest::Add(n)) => {
            state.count += n;
            save(state);
            answer(state.count);
        }
        Ok(CounterRequest::Get) => answer(state.count),
        Ok(CounterRequest::Tick(ms)) => {
            state.at_tick = state.count;
            timer::set_timer(ms, None);
        }
        Err(error) => {
            hyperware_process_lib::println!("counter: bad request: {error}");
        }
    }
}

call_init!(init);
fn init(_our: Address) {
    let mut state: State = get_state()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    hyperware_process_lib::println!("counter: started at {}", state.count);
    loop {
        match await_message() {
            Ok(message) => handle(&mut state, &message),
            Err(error) => hyperware_process_lib::println!("counter: send error: {error:?}"),
        }
    }
}

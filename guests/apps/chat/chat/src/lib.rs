//! Chat: messages between nodes, each node's history kept in its state across restarts.
//!
//! Requests (JSON): from our node, `{"Send": {"to": NODE, "text": T}}` carries T to the chat
//! on NODE and answers `"Sent"` once that chat took it, or `{"Failed": WHY}`; from any node,
//! `{"Message": {"from": NODE, "text": T}}` adds T to our history and answers `"Ack"`;
//! `"History"` answers `{"History": [{"from", "to", "text"}, …]}`, oldest first.
use hyperware_process_lib::{
    Address, Message, Request, Response, await_message, call_init, get_state, set_state,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "process-v1",
});

#[derive(Debug, Serialize, Deserialize)]
enum ChatRequest {
    Send { to: String, text: String },
    Message { from: String, text: String },
    History,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Line {
    from: String,
    to: String,
    text: String,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    history: Vec<Line>,
}

fn save(state: &State) {
    set_state(&serde_json::to_vec(state).unwrap_or_default());
}

fn answer(body: serde_json::Value) {
    let _ = Response::new().body(body.to_string()).send();
}

/// Carries `text` to the chat on node `to`; whether it took it.
fn carry(our: &Address, to: &str, text: &str) -> Result<(), String> {
    let chat = Address::new(to, ("chat", "chat", "example.os"));
    let body = json!({"Message": {"from": our.node(), "text": text}});
    match Request::to(chat)
        .body(body.to_string())
        .send_and_await_response(5)
    {
        Ok(Ok(reply)) if reply.body() == b"\"Ack\"" => Ok(()),
        Ok(Ok(reply)) => Err(format!(
            "{to} answered {}",
            String::from_utf8_lossy(reply.body())
        )),
        Ok(Err(error)) => Err(format!("{to}: {:?}", error.kind)),
        Err(error) => Err(format!("{to}: {error}")),
    }
}

fn handle(our: &Address, state: &mut State, message: &Message) {
    if !message.is_request() {
        return;
    }
    let local = message.source().node() == our.node();
    match serde_json::from_slice::<ChatRequest>(message.body()) {
        Ok(ChatRequest::Send { to, text }) if local => match carry(our, &to, &text) {
            Ok(()) => {
                let from = our.node().to_string();
                state.history.push(Line { from, to, text });
                save(state);
                answer(json!("Sent"));
            }
            Err(why) => answer(json!({"Failed": why})),
        },
        Ok(ChatRequest::Message { from, text }) if from == message.source().node() => {
            let to = our.node().to_string();
            state.history.push(Line { from, to, text });
            save(state);
            answer(json!("Ack"));
        }
        Ok(ChatRequest::History) => answer(json!({"History": state.history})),
        Ok(other) => answer(json!({"Failed": format!("refused: {other:?}")})),
        Err(error) => answer(json!({"Failed": format!("bad request: {error}")})),
    }
}

call_init!(init);
fn init(our: Address) {
    let mut state: State = get_state()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    hyperware_process_lib::println!("chat: started with {} lines", state.history.len());
    loop {
        match await_message() {
            Ok(message) => handle(&our, &mut state, &message),
            Err(error) => hyperware_process_lib::println!("chat: send error: {error:?}"),
        }
    }
}

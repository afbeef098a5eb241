//! Probe: runs the host function its request names and answers with what it returned, so
//! tests can check every host function from a real guest. Commands (the request body):
//! `our`, `has-blob`, `get-blob`, `last-blob`, `caps`, `save ISSUER PARAMS`,
//! `drop ISSUER PARAMS`, `on-exit`, `set-on-exit none|restart`, `await ADDRESS BODY`,
//! `await-self`, `await-get-blob ADDRESS` (awaits it with a blob, then reads `get-blob`),
//! `fanout ADDRESS,ADDRESS BODY`, `forward ADDRESS`, `state`, `set-state TEXT`,
//! `spawn NAME|- PATH` (the child gets all our capabilities that `spawn` lets through, and
//! grants `{"granted":true}` to `tester:tester:sys`).
use hyperkernel_guest::{self as hk, Address, Capability, Guest, Message, OnExit, ProcessId};

struct Probe;

fn parse_address(text: &str) -> Option<Address> {
    let (node, process) = text.split_once('@')?;
    let mut parts = process.splitn(3, ':');
    Some(Address {
        node: node.into(),
        process: ProcessId {
            process_name: parts.next()?.into(),
            package_name: parts.next()?.into(),
            publisher_node: parts.next()?.into(),
        },
    })
}

fn blob_text(blob: Option<hk::LazyLoadBlob>) -> String {
    match blob {
        Some(blob) => format!("{:?}:{}", blob.mime, String::from_utf8_lossy(&blob.bytes)),
        None => "none".into(),
    }
}

fn caps_text() -> String {
    let mut caps: Vec<String> = hk::our_capabilities()
        .iter()
        .map(|c| format!("{} {}", hk::address_text(&c.issuer), c.params))
        .collect();
    caps.sort();
    caps.join("\n")
}

fn capability(args: &str) -> Option<Capability> {
    let (issuer, params) = args.split_once(' ')?;
    Some(Capability {
        issuer: parse_address(issuer)?,
        params: params.into(),
    })
}

fn on_exit_text() -> String {
    match hk::get_on_exit() {
        OnExit::None => "none".into(),
        OnExit::Restart => "restart".into(),
        OnExit::Requests(requests) => format!("requests:{}", requests.len()),
    }
}

fn await_text(target: &Address, body: &str) -> String {
    let mut request = hk::request(body);
    request.expects_response = Some(5);
    match hk::send_and_await_response(target, &request, None) {
        Ok((source, Message::Response((response, _)))) => format!(
            "ok {} {}",
            hk::address_text(&source),
            String::from_utf8_lossy(&response.body)
        ),
        Ok((_, Message::Request(_))) => "request?".into(),
        Err(error) => format!("err {:?}", error.kind),
    }
}

/// Runs one command; `None` means: do not answer (the command forwarded the request).
fn run(command: &str, args: &str) -> Option<String> {
    Some(match command {
        "our" => hk::address_text(&hk::our()),
        "has-blob" => hk::has_blob().to_string(),
        "get-blob" => blob_text(hk::get_blob()),
        "last-blob" => blob_text(hk::last_blob()),
        "caps" => caps_text(),
        "save" | "drop" => match capability(args) {
            Some(cap) if command == "save" => {
                hk::save_capabilities(&[cap]);
                caps_text()
            }
            Some(cap) => {
                hk::drop_capabilities(&[cap]);
                caps_text()
            }
            None => "bad capability".into(),
        },
        "on-exit" => on_exit_text(),
        "set-on-exit" => {
            hk::set_on_exit(&if args == "restart" {
                OnExit::Restart
            } else {
                OnExit::None
            });
            on_exit_text()
        }
        "await" => {
            let (target, body) = args.split_once(' ')?;
            await_text(&parse_address(target)?, body)
        }
        "await-self" => await_text(&hk::our(), "me"),
        "await-get-blob" => {
            // Awaits `target` with a blob, then reads the blob of what came back.
            let blob = hk::LazyLoadBlob {
                mime: Some("text/plain".into()),
                bytes: b"payload".to_vec(),
            };
            let mut request = hk::request(args);
            request.expects_response = Some(5);
            let target = parse_address(args)?;
            let answer = hk::send_and_await_response(&target, &request, Some(&blob));
            format!("{} {}", answer.is_ok(), blob_text(hk::get_blob()))
        }
        "fanout" => {
            let (targets, body) = args.split_once(' ')?;
            let requests: Vec<_> = targets
                .split(',')
                .filter_map(parse_address)
                .map(|target| (target, hk::request(body), None, None))
                .collect();
            hk::send_requests(&requests);
            format!("sent {}", requests.len())
        }
        "forward" => {
            let mut request = hk::request("forwarded");
            request.inherit = true;
            hk::send_request(&parse_address(args)?, &request, None, None);
            return None;
        }
        "spawn" => {
            let (name, path) = args.split_once(' ')?;
            let name = (name != "-").then(|| name.to_owned());
            let grants = vec![(
                parse_address("x@tester:tester:sys")?.process,
                "{\"granted\":true}".to_owned(),
            )];
            let caps = hk::our_capabilities();
            match hk::spawn(name.as_deref(), path, &OnExit::None, &caps, &grants, false) {
                Ok(child) => format!(
                    "ok {}:{}:{}",
                    child.process_name, child.package_name, child.publisher_node
                ),
                Err(error) => format!("err {}", error.name()),
            }
        }
        "state" => match hk::get_state() {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => "none".into(),
        },
        "set-state" => {
            hk::set_state(args.as_bytes());
            "saved".into()
        }
        _ => "unknown command".into(),
    })
}

impl Guest for Probe {
    fn init(_our: String) {
        hk::install_panic_hook();
        loop {
            let Ok((_source, Message::Request(request))) = hk::receive() else {
                continue;
            };
            let text = String::from_utf8_lossy(&request.body).into_owned();
            let (command, args) = text.split_once(' ').unwrap_or((&text, ""));
            if let Some(answer) = run(command, args) {
                hk::respond(answer);
            }
        }
    }
}

hk::export_process!(Probe);

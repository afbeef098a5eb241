//! Notifier: a process with `OnExit::Requests`. `watch ADDRESS` makes the kernel send
//! `gone: <our address>` to ADDRESS when this process ends, however it ends; `exit` returns
//! from `init`; `crash` panics.
use hyperkernel_guest::{self as hk, Guest, Message, OnExit};

struct Notifier;

fn parse_address(text: &str) -> Option<hk::Address> {
    let (node, process) = text.split_once('@')?;
    let mut parts = process.splitn(3, ':');
    Some(hk::Address {
        node: node.into(),
        process: hk::ProcessId {
            process_name: parts.next()?.into(),
            package_name: parts.next()?.into(),
            publisher_node: parts.next()?.into(),
        },
    })
}

impl Guest for Notifier {
    fn init(our: String) {
        hk::install_panic_hook();
        loop {
            let Ok((_source, Message::Request(request))) = hk::receive() else {
                continue;
            };
            let text = String::from_utf8_lossy(&request.body).into_owned();
            match text.split_once(' ') {
                Some(("watch", target)) => {
                    let Some(target) = parse_address(target) else {
                        hk::respond("bad address");
                        continue;
                    };
                    let notice = hk::request(format!("gone: {our}"));
                    hk::set_on_exit(&OnExit::Requests(vec![(target, notice, None)]));
                    hk::respond("watching");
                }
                _ if text == "exit" => return,
                _ if text == "crash" => panic!("notifier asked to crash"),
                _ => hk::respond("unknown"),
            }
        }
    }
}

hk::export_process!(Notifier);

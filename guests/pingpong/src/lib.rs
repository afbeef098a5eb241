//! Ping-pong driver: a request `N process:package:publisher` makes it send N `ping` requests to
//! that process on our node (`N node@process:package:publisher`: on that node), one at a time,
//! each awaiting its response through `receive`; then it answers the request that started it
//! with the number of responses it got (an `Offline` or a timeout counts as none).
use hyperkernel_guest::{self as hk, Guest, Message};

struct PingPong;

fn parse(body: &[u8]) -> Option<(u64, hk::Address)> {
    let text = std::str::from_utf8(body).ok()?;
    let (count, target) = text.split_once(' ')?;
    let (node, target) = match target.split_once('@') {
        Some((node, process)) => (Some(node), process),
        None => (None, target),
    };
    let mut parts = target.splitn(3, ':');
    let (process, package, publisher) = (parts.next()?, parts.next()?, parts.next()?);
    let mut address = hk::local(process, package, publisher);
    if let Some(node) = node {
        address.node = node.to_owned();
    }
    Some((count.parse().ok()?, address))
}

impl Guest for PingPong {
    fn init(_our: String) {
        hk::install_panic_hook();
        loop {
            let Ok((_source, Message::Request(start))) = hk::receive() else {
                continue;
            };
            let Some((count, target)) = parse(&start.body) else {
                hk::respond("usage: N process:package:publisher");
                continue;
            };
            let mut answered = 0_u64;
            for _ in 0..count {
                let mut ping = hk::request("ping");
                ping.expects_response = Some(5);
                hk::send_request(&target, &ping, None, None);
                if let Ok((_, Message::Response(_))) = hk::receive() {
                    answered += 1;
                }
            }
            // Each response restores the prompting message of its request (`start`), so
            // this answers the starter.
            hk::print_to_terminal(2, &format!("pingpong: {answered} of {count}"));
            hk::respond(answered.to_string());
        }
    }
}

hk::export_process!(PingPong);

//! Ping-pong driver: a request `N process:package:publisher` makes it send N `ping` requests to
//! that process on our node, one at a time, each awaiting its response through `receive`;
//! then it answers the request that started it with the number of responses it got.
use hyperkernel_guest::{self as hk, Guest, Message};

struct PingPong;

fn parse(body: &[u8]) -> Option<(u64, hk::Address)> {
    let text = std::str::from_utf8(body).ok()?;
    let (count, target) = text.split_once(' ')?;
    let mut parts = target.splitn(3, ':');
    let (process, package, publisher) = (parts.next()?, parts.next()?, parts.next()?);
    Some((count.parse().ok()?, hk::local(process, package, publisher)))
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

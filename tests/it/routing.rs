//! Routing conformance (spec §3): the capability checks, `our` substitution, the network
//! check, immediate send errors, timeouts on the kernel clock, late responses, forwarding
//! with `inherit`, per-pair order, backpressure and the timer module. Method: driven
//! processes act as the apps; each test asserts what arrives and what the trace records.

use crate::harness::{World, messaging};
use hyperkernel::{Capability, KernelCommand, Request, Response, Timestamp};
use serde_json::json;

#[test]
fn local_messages_need_a_messaging_capability_or_a_public_target() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], false);
    let b = world.driven("b", &[], false);
    let public = world.driven("pub", &[], true);
    world.send(
        &a,
        "our.os@b:test:our.os",
        Request::new("hi").expecting(5),
        Some("ctx"),
    );
    let refused = world.received(&a);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["kind"], json!("SendError"));
    assert_eq!(refused[0]["context"], json!("ctx"));
    assert_eq!(world.kernel.now(), Timestamp(0), "refused at once");
    assert!(world.received(&b).is_empty());
    world.send(&a, "our.os@pub:test:our.os", Request::new("hi"), None);
    assert_eq!(world.received(&public).len(), 1);
    let grant = KernelCommand::GrantCapabilities {
        target: a.clone(),
        capabilities: vec![messaging("b:test:our.os")],
    };
    world.command(&grant, None);
    world.send(&a, "our.os@b:test:our.os", Request::new("hi"), None);
    assert_eq!(world.received(&b)[0]["body"], json!("hi"));
    assert_eq!(world.drops(), vec!["NoMessagingCapability"]);
}

#[test]
fn the_node_our_is_replaced_by_our_name() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], true);
    let b = world.driven("b", &[], true);
    world.send(&a, "our@b:test:our.os", Request::new("hi"), None);
    let got = world.received(&b);
    assert_eq!(got[0]["source"], json!("our.os@a:test:our.os"));
}

#[test]
fn other_nodes_need_the_network_capability_and_are_offline_for_now() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], false);
    let networked = world.driven("net", &[Capability::network("our.os")], false);
    world.send(
        &a,
        "bob.os@chat:chat:bob.os",
        Request::new("hi").expecting(5),
        None,
    );
    assert_eq!(world.received(&a)[0]["error"], json!("Timeout"));
    world.send(
        &networked,
        "bob.os@chat:chat:bob.os",
        Request::new("hi").expecting(5),
        None,
    );
    assert_eq!(world.received(&networked)[0]["error"], json!("Offline"));
    assert_eq!(
        world.drops(),
        vec!["NoNetworkCapability", "NodeUnreachable"]
    );
}

#[test]
fn with_a_network_messages_for_other_nodes_wait_in_the_outbox() {
    let mut config = hyperkernel::KernelConfig::new("our.os", 1);
    config.network = true;
    let mut kernel = hyperkernel::KernelBuilder::new("our.os", 1)
        .config(config)
        .build()
        .unwrap();
    let net = crate::harness::pid("net:test:our.os");
    kernel
        .harness()
        .register_driven(&net, &[Capability::network("our.os")], false)
        .unwrap();
    for body in ["first", "second"] {
        let to = "bob.os@chat:chat:bob.os".parse().unwrap();
        let request = Request::new(body).expecting(5);
        kernel
            .harness()
            .send_as(&net, to, request, None, None)
            .unwrap();
    }
    let now = kernel.now();
    kernel.harness().run_until(now);
    assert!(!kernel.is_quiescent(), "the outbox waits for the network");
    let first = kernel.take_outbound().unwrap();
    assert_eq!(first.message.body(), b"first");
    assert_eq!(first.source.to_string(), "our.os@net:test:our.os");
    let transmitted = kernel
        .trace()
        .records()
        .iter()
        .filter(|r| matches!(r.event, hyperkernel::Event::Transmitted { .. }))
        .count();
    assert_eq!(transmitted, 2);
    // The network cannot reach bob.os: the sender hears Offline at once.
    kernel.harness().unreachable(first);
    let now = kernel.now();
    kernel.harness().run_until(now);
    let (error, _) = kernel
        .harness()
        .receive_as(&net)
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, hyperkernel::SendErrorKind::Offline);
    assert_eq!(kernel.take_outbound().unwrap().message.body(), b"second");
    assert!(kernel.take_outbound().is_none());
}

#[test]
fn messages_from_other_nodes_reach_only_networked_processes() {
    let mut world = World::new(1);
    let plain = world.driven("plain", &[], true);
    let networked = world.driven("net", &[Capability::network("our.os")], false);
    for target in [
        "our.os@plain:test:our.os",
        "our.os@net:test:our.os",
        "our.os@ghost:test:our.os",
    ] {
        let message = hyperkernel::KernelMessage {
            id: 1,
            source: "bob.os@chat:chat:bob.os".parse().unwrap(),
            target: target.parse().unwrap(),
            rsvp: None,
            message: hyperkernel::Message::Request(Request::new("remote")),
            lazy_load_blob: None,
        };
        world.kernel.harness().submit(message).unwrap();
    }
    world.kernel.harness().run_until_idle();
    assert!(world.received(&plain).is_empty());
    assert_eq!(
        world.received(&networked)[0]["source"],
        json!("bob.os@chat:chat:bob.os")
    );
    assert_eq!(
        world.drops(),
        vec!["RemoteTargetRefused", "RemoteTargetRefused"]
    );
}

#[test]
fn a_request_times_out_on_the_kernel_clock_with_its_body_and_context() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], true);
    let silent = world.driven("silent", &[], true);
    world.send(
        &a,
        "our.os@silent:test:our.os",
        Request::new("anyone?").expecting(7),
        Some("ctx-7"),
    );
    assert!(world.received(&a).is_empty(), "nothing before the deadline");
    world.kernel.harness().run_until_idle();
    assert_eq!(
        world.kernel.now(),
        Timestamp(7 * Timestamp::NANOS_PER_SECOND)
    );
    let got = world.received(&a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["error"], json!("Timeout"));
    assert_eq!(got[0]["body"], json!("anyone?"));
    assert_eq!(got[0]["context"], json!("ctx-7"));
    // The late response is dropped: exactly one answer per request.
    assert_eq!(world.received(&silent).len(), 1);
    world
        .kernel
        .harness()
        .respond_as(&silent, Response::new("too late"), None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    assert!(world.received(&a).is_empty());
    assert_eq!(world.drops(), vec!["NoContext"]);
}

#[test]
fn responses_are_capability_checked_too() {
    let mut world = World::new(1);
    let a = world.driven("a", &[messaging("b:test:our.os")], false);
    let b = world.driven("b", &[], false);
    world.send(
        &a,
        "our.os@b:test:our.os",
        Request::new("q").expecting(3),
        None,
    );
    assert_eq!(world.received(&b).len(), 1);
    world
        .kernel
        .harness()
        .respond_as(&b, Response::new("a"), None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    assert_eq!(
        world.kernel.now(),
        Timestamp(3 * Timestamp::NANOS_PER_SECOND)
    );
    // b may not message a, so its response is dropped and a times out (the reference rule).
    let got = world.received(&a);
    assert_eq!(got[0]["error"], json!("Timeout"));
    assert_eq!(world.drops(), vec!["NoMessagingCapability"]);
}

#[test]
fn forwarding_with_inherit_answers_the_original_requester() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], true);
    let b = world.driven("b", &[], true);
    let c = world.driven("c", &[], true);
    let id = world.send(
        &a,
        "our.os@b:test:our.os",
        Request::new("job").expecting(5),
        Some("mine"),
    );
    assert_eq!(world.received(&b).len(), 1);
    let mut forward = Request::new("job, forwarded");
    forward.inherit = true;
    world.send(&b, "our.os@c:test:our.os", forward, None);
    assert_eq!(world.received(&c)[0]["body"], json!("job, forwarded"));
    world
        .kernel
        .harness()
        .respond_as(&c, Response::new("done"), None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    let got = world.received(&a);
    assert_eq!(got[0]["source"], json!("our.os@c:test:our.os"));
    assert_eq!(got[0]["context"], json!("mine"));
    assert!(world.received(&b).is_empty());
    assert!(id != 0);
}

#[test]
fn messages_between_one_pair_keep_their_order() {
    for seed in 0..20 {
        let mut world = World::new(seed);
        let a = world.driven("a", &[], true);
        let b = world.driven("b", &[], true);
        let target = world.kernel.address_of(&b);
        for n in 0..30 {
            world
                .kernel
                .harness()
                .send_as(&a, target.clone(), Request::new(n.to_string()), None, None)
                .unwrap();
        }
        world.kernel.harness().run_until_idle();
        let bodies: Vec<String> = world
            .received(&b)
            .iter()
            .map(|m| m["body"].to_string())
            .collect();
        let expected: Vec<String> = (0..30).map(|n| n.to_string()).collect();
        assert_eq!(bodies, expected, "seed {seed}");
    }
}

#[test]
fn a_full_mailbox_pushes_back_with_a_send_error() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], true);
    let b = world.driven("b", &[], true);
    let target = world.kernel.address_of(&b);
    let max = hyperkernel::kernel::MAILBOX_LEN_MAX;
    for n in 0..max + 2 {
        world
            .kernel
            .harness()
            .send_as(
                &a,
                target.clone(),
                Request::new(n.to_string()).expecting(60),
                None,
                None,
            )
            .unwrap();
    }
    world.kernel.harness().run_until(Timestamp(1));
    let refused = world.received(&a);
    assert_eq!(refused.len(), 2, "two over the bound");
    assert!(refused.iter().all(|r| r["error"] == json!("Timeout")));
    assert_eq!(world.kernel.mailbox_len(&b), Some(max));
    assert_eq!(world.drops(), vec!["MailboxFull", "MailboxFull"]);
    world.kernel.check_invariants().unwrap();
}

#[test]
fn the_timer_module_answers_after_exactly_the_requested_time() {
    let mut world = World::new(1);
    let a = world.driven("a", &[], true);
    world.send(
        &a,
        "our.os@timer:distro:sys",
        Request::new(r#"{"SetTimer":2500}"#).expecting(5),
        Some("t"),
    );
    assert!(world.received(&a).is_empty());
    world.kernel.harness().run_until_idle();
    let got = world.received(&a);
    assert_eq!(got[0]["kind"], json!("Response"));
    assert_eq!(got[0]["context"], json!("t"));
    let fired_at = world
        .kernel
        .trace()
        .records()
        .iter()
        .rev()
        .find_map(|r| match r.event {
            hyperkernel::Event::Alarm { .. } => Some(r.at),
            _ => None,
        });
    assert_eq!(
        fired_at,
        Some(Timestamp(2_500 * Timestamp::NANOS_PER_MILLI)),
        "not 1 ms early (W23)"
    );
}

#[test]
fn a_message_over_the_size_cap_is_refused_with_a_send_error() {
    let mut config = hyperkernel::KernelConfig::new("our.os", 1);
    config.message_len_max = 1024;
    let mut kernel = hyperkernel::KernelBuilder::new("our.os", 1)
        .config(config)
        .build()
        .unwrap();
    let a: hyperkernel::ProcessId = "a:test:our.os".parse().unwrap();
    let b: hyperkernel::ProcessId = "b:test:our.os".parse().unwrap();
    kernel.harness().register_driven(&a, &[], false).unwrap();
    kernel.harness().register_driven(&b, &[], true).unwrap();
    let to_b = kernel.address_of(&b);
    let big = Request::new(vec![7_u8; 1025]).expecting(5);
    kernel
        .harness()
        .send_as(&a, to_b.clone(), big, None, None)
        .unwrap();
    let fits = Request::new(vec![7_u8; 1024]);
    kernel
        .harness()
        .send_as(&a, to_b, fits, None, None)
        .unwrap();
    let now = kernel.now();
    kernel.harness().run_until(now);
    let refused = kernel
        .harness()
        .receive_as(&a)
        .unwrap()
        .expect("a send error");
    assert!(refused.is_err(), "{refused:?}");
    let delivered = kernel
        .harness()
        .receive_as(&b)
        .unwrap()
        .expect("the one that fits");
    assert_eq!(delivered.unwrap().1.body().len(), 1024);
    assert!(kernel.harness().receive_as(&b).unwrap().is_none());
    let drops = kernel.trace().records().iter().filter(|r| {
        matches!(
            &r.event,
            hyperkernel::Event::Dropped {
                reason: hyperkernel::DropReason::TooLarge,
                ..
            }
        )
    });
    assert_eq!(drops.count(), 1);
}

//! Worlds of several real kernels on one clock (the first slice of the worlds issue): messages
//! cross nodes through the network and each kernel's remote door, pairs keep their order,
//! unknown nodes answer `Offline`, a run is the same for the same seed, and a hostile node is
//! refused by the network and by the receiving kernel.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use hyperkernel::{
    Address, Capability, Event, Flow, Input, KernelMessage, Message, NativeLoader, Output,
    ProcessContext, ProcessId, Request, Response, Timestamp, Wake,
};
use hyperkernel_sim::world::net::{LossReason, NetConfig};
use hyperkernel_sim::world::{NetEvent, World, node_seed};

fn pid(text: &str) -> ProcessId {
    text.parse().unwrap()
}

/// Answers every request with its body; remembers the bodies it got in order in its prints.
fn echo() -> Box<dyn hyperkernel::Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            ctx.print_to_terminal(0, &String::from_utf8_lossy(&request.body));
            if request.expects_response.is_some() {
                ctx.send_response(Response::new(request.body), None);
            }
        }
        Flow::Receive
    })
}

const ECHO: &str = "echo:echo:sys.os";
const CLIENT: &str = "client:client:sys.os";

/// Nodes `a.os` and `b.os`, each with a networked echo and a networked driven client.
fn two_nodes(seed: u64, net: NetConfig) -> World {
    let mut world = World::new(seed, net);
    for name in ["a.os", "b.os"] {
        let index = world
            .add_node(name, Box::new(NativeLoader::new()), |_| {})
            .unwrap();
        let network = Capability::network(name);
        let kernel = world.kernel(index).unwrap();
        kernel
            .harness()
            .register_native(&pid(ECHO), echo(), std::slice::from_ref(&network), true)
            .unwrap();
        let register = Input::Register {
            process: pid(CLIENT),
            capabilities: vec![network],
            public: true,
            protected: false,
        };
        world.input(index, register).unwrap();
    }
    world
}

fn send(world: &mut World, from: usize, to: &str, body: &str, expects: Option<u64>) {
    let mut request = Request::new(body);
    request.expects_response = expects;
    let send = Input::Send {
        process: pid(CLIENT),
        target: to.parse().unwrap(),
        request,
        context: None,
        blob: None,
    };
    world.input(from, send).unwrap();
}

/// Everything the client of node `index` received, as (source, body or error kind).
fn received(world: &mut World, index: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(Output::Received(Some(received))) = world.input(
        index,
        Input::Receive {
            process: pid(CLIENT),
        },
    ) {
        out.push(match received.0 {
            Ok((source, message)) => (
                source.to_string(),
                String::from_utf8_lossy(message.body()).into_owned(),
            ),
            Err((error, _)) => (error.target.to_string(), format!("{:?}", error.kind)),
        });
    }
    out
}

/// The bodies node `index`'s echo printed, in order.
fn echoed(world: &World, index: usize) -> Vec<String> {
    let echo = pid(ECHO);
    world.nodes()[index]
        .kernel
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Print { process, text, .. } if *process == echo => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_request_crosses_to_another_kernel_and_its_answer_comes_back() {
    let mut world = two_nodes(1, NetConfig::default());
    send(&mut world, 0, "b.os@echo:echo:sys.os", "hello b", Some(5));
    world.run_until_idle(10_000).unwrap();
    assert_eq!(
        received(&mut world, 0),
        vec![("b.os@echo:echo:sys.os".into(), "hello b".into())]
    );
    assert_eq!(echoed(&world, 1), vec!["hello b"]);
    let (sent, delivered, lost) = world.net_counts();
    assert_eq!(
        (sent, delivered, lost),
        (2, 2, 0),
        "the request and its answer"
    );
    // The network took a delay each way: the world's time moved past two minimum delays.
    assert!(world.now().0 >= 2 * NetConfig::default().delay_min_nanos);
    for node in world.nodes() {
        node.kernel.check_invariants().unwrap();
    }
}

#[test]
fn messages_between_a_pair_arrive_in_the_order_they_were_sent() {
    // Delays vary a lot per message; the pair's order must not.
    let net = NetConfig {
        delay_min_nanos: 1_000,
        delay_mean_nanos: 50_000_000,
    };
    let mut world = two_nodes(9, net);
    let bodies: Vec<String> = (0..60).map(|n| format!("m{n}")).collect();
    for body in &bodies {
        send(&mut world, 0, "b.os@echo:echo:sys.os", body, None);
    }
    world.run_until_idle(100_000).unwrap();
    assert_eq!(echoed(&world, 1), bodies);
}

#[test]
fn a_message_for_a_node_the_world_does_not_know_is_offline() {
    let mut world = two_nodes(2, NetConfig::default());
    send(
        &mut world,
        0,
        "nobody.os@echo:echo:sys.os",
        "anyone?",
        Some(5),
    );
    world.run_until_idle(10_000).unwrap();
    assert_eq!(
        received(&mut world, 0),
        vec![("nobody.os@echo:echo:sys.os".into(), "Offline".into())]
    );
    assert!(
        matches!(world.events(), [NetEvent::Offline { from: 0, .. }]),
        "{:?}",
        world.events()
    );
}

/// A run of a few exchanges both ways; its world hash and every node's trace hash.
fn exchange(seed: u64) -> (u64, Vec<u64>, Timestamp) {
    let mut world = two_nodes(seed, NetConfig::default());
    for n in 0..10 {
        send(
            &mut world,
            0,
            "b.os@echo:echo:sys.os",
            &format!("a{n}"),
            Some(5),
        );
        send(
            &mut world,
            1,
            "a.os@echo:echo:sys.os",
            &format!("b{n}"),
            Some(5),
        );
    }
    world.run_until_idle(100_000).unwrap();
    assert_eq!(received(&mut world, 0).len(), 10);
    let hashes = world
        .nodes()
        .iter()
        .map(|n| n.kernel.trace().hash())
        .collect();
    (world.hash(), hashes, world.now())
}

#[test]
fn one_seed_is_one_world_run_and_nodes_draw_from_their_own_seeds() {
    assert_eq!(exchange(5), exchange(5));
    assert_ne!(exchange(5).0, exchange(6).0, "another seed, other delays");
    assert_ne!(node_seed(5, "a.os"), node_seed(5, "b.os"));
    assert_eq!(node_seed(5, "a.os"), node_seed(5, "a.os"));
    // A node's seed does not depend on the other nodes.
    let mut alone = World::new(5, NetConfig::default());
    alone
        .add_node("a.os", Box::new(NativeLoader::new()), |_| {})
        .unwrap();
    let mut paired = two_nodes(5, NetConfig::default());
    let signer = |world: &mut World| world.kernel(0).unwrap().capabilities().verifying_key();
    assert_eq!(
        signer(&mut alone),
        signer(&mut paired),
        "a.os has the same key in both"
    );
    assert_ne!(
        signer(&mut paired),
        paired.kernel(1).unwrap().capabilities().verifying_key()
    );
}

#[test]
fn a_hostile_node_is_refused_by_the_network_and_by_the_receiving_kernel() {
    let mut world = two_nodes(3, NetConfig::default());
    let evil = world
        .add_node("evil.os", Box::new(NativeLoader::new()), |_| {})
        .unwrap();
    let network = Capability::network("evil.os");
    let register = Input::Register {
        process: pid(CLIENT),
        capabilities: vec![network],
        public: true,
        protected: false,
    };
    world.input(evil, register).unwrap();
    // evil.os claims to be a.os: the network closes the connection (the reference's check).
    world.tamper(evil, |message: &mut KernelMessage| {
        message.source = Address::new("a.os", message.source.process.clone());
    });
    send(&mut world, evil, "b.os@echo:echo:sys.os", "i am a", None);
    world.run_until_idle(10_000).unwrap();
    assert!(
        echoed(&world, 1).is_empty(),
        "a spoofed message reached b's echo"
    );
    assert!(
        world.events().iter().any(|e| matches!(
            e,
            NetEvent::Lost {
                reason: LossReason::Spoofed,
                ..
            }
        )),
        "{:?}",
        world.events()
    );
    // evil.os attaches capabilities of b.os's issue that b never gave: b's door prunes them.
    world.tamper(evil, |message: &mut KernelMessage| {
        if let Message::Request(request) = &mut message.message {
            let kernel_messaging = Capability::messaging("b.os@kernel:distro:sys".parse().unwrap());
            request.capabilities.push((kernel_messaging, vec![7; 64]));
        }
    });
    send(&mut world, evil, "b.os@echo:echo:sys.os", "take this", None);
    world.run_until_idle(10_000).unwrap();
    assert_eq!(
        echoed(&world, 1),
        vec!["take this"],
        "the message itself is delivered"
    );
    let b = &world.nodes()[1].kernel;
    let pruned = b.trace().records().iter().any(|r| {
        matches!(&r.event, Event::CapabilitiesPruned { capabilities, .. } if capabilities.len() == 1)
    });
    assert!(pruned, "b.os kept a capability it never signed");
    assert!(
        !b.capabilities_of(&pid(ECHO))
            .iter()
            .any(|c| c.issuer.process.is_kernel() && c.params.contains("messaging"))
    );
}

/// Asks node `index`'s `net:distro:sys` `action` as its client (given messaging to it) and
/// returns the answer.
fn ask_net(
    world: &mut World,
    index: usize,
    action: &hyperkernel::types::net::NetAction,
) -> hyperkernel::types::net::NetResponse {
    let name = world.names()[index].clone();
    let net: hyperkernel::Address = format!("{name}@net:distro:sys").parse().unwrap();
    let grant = Capability::messaging(net.clone());
    world
        .kernel(index)
        .unwrap()
        .harness()
        // Public: net answers only those it may message, as in the reference.
        .register_driven(&pid("asker:asker:sys.os"), &[grant], true)
        .ok();
    let body = hyperkernel::types::net::encode(action).unwrap();
    let send = Input::Send {
        process: pid("asker:asker:sys.os"),
        target: net,
        request: Request::new(body).expecting(5),
        context: None,
        blob: None,
    };
    world.input(index, send).unwrap();
    world.run_until_idle(10_000).unwrap();
    let receive = Input::Receive {
        process: pid("asker:asker:sys.os"),
    };
    let Ok(Output::Received(Some(received))) = world.input(index, receive) else {
        panic!("no answer from net");
    };
    let Ok((_, message)) = received.0 else {
        panic!("an error from net: {:?}", received.0);
    };
    hyperkernel::types::net::decode(message.body()).unwrap()
}

#[test]
fn every_node_answers_net_questions_from_the_worlds_directory_and_traffic() {
    use hyperkernel::types::net::{NetAction, NetResponse};
    let mut world = two_nodes(4, NetConfig::default());
    world.publish_directory();
    let b = world.kernel(1).unwrap().identity();
    // The directory holds every node's identity, keys included; no peers before traffic.
    let answer = ask_net(&mut world, 0, &NetAction::GetPeer("b.os".into()));
    assert_eq!(answer, NetResponse::Peer(Some(b.clone())));
    assert_eq!(
        ask_net(&mut world, 0, &NetAction::GetPeers),
        NetResponse::Peers(vec![])
    );
    // Once b's message has reached a, b is a's peer (and a is not yet b's: nothing came back).
    send(&mut world, 1, "a.os@echo:echo:sys.os", "hello a", None);
    world.run_until_idle(10_000).unwrap();
    assert_eq!(
        ask_net(&mut world, 0, &NetAction::GetPeers),
        NetResponse::Peers(vec![b])
    );
    assert_eq!(
        ask_net(&mut world, 1, &NetAction::GetPeers),
        NetResponse::Peers(vec![])
    );
}

//! Messages from other nodes (`Kernel::submit`) as an attacker sends them: capabilities that
//! claim our node as issuer without our signature, sources that claim our node, messages for a
//! third node. Each class once broke the kernel (SECURITY.md, remote messages).

use crate::harness::{OUR, World, pid};
use hyperkernel::{Capability, Event, KernelCommand, KernelMessage, Message, Request};

fn remote_request(source: &str, target: &str, request: Request) -> KernelMessage {
    KernelMessage {
        id: 77,
        source: source.parse().unwrap(),
        target: target.parse().unwrap(),
        rsvp: None,
        message: Message::Request(request),
        lazy_load_blob: None,
    }
}

/// A networked `saver` (saves whatever comes attached to each request).
fn world_with_saver() -> (World, hyperkernel::ProcessId) {
    let mut world = World::new(3);
    let saver = world.spawn("saver", "saver", hyperkernel::OnExit::None, vec![], true);
    let grant = KernelCommand::GrantCapabilities {
        target: saver.clone(),
        capabilities: vec![Capability::network(OUR)],
    };
    world.command(&grant, None);
    world.settle();
    assert!(
        world
            .kernel
            .capabilities_of(&saver)
            .contains(&Capability::network(OUR))
    );
    (world, saver)
}

#[test]
fn capabilities_claiming_our_node_without_our_signature_are_pruned() {
    let (mut world, saver) = world_with_saver();
    let kernel_messaging =
        Capability::messaging(format!("{OUR}@kernel:distro:sys").parse().unwrap());
    let vfs_root = Capability::new(
        format!("{OUR}@vfs:distro:sys").parse().unwrap(),
        r#"{"root":true}"#,
    );
    let our_literal = Capability::messaging("our@kernel:distro:sys".parse().unwrap());
    let theirs = Capability::messaging("bob.os@chat:chat:bob.os".parse().unwrap());
    // One capability we did sign (the client holds it): it verifies, so it is kept.
    let (signed, signature) = world
        .kernel
        .capabilities()
        .held_signed(&world.client)
        .into_iter()
        .find(|(cap, _)| cap.issuer.process == world.client)
        .unwrap();
    let mut request = Request::new("take these");
    request.capabilities = vec![
        (kernel_messaging.clone(), vec![0; 64]),
        (vfs_root.clone(), vec![]),
        (our_literal.clone(), vec![1; 64]),
        (theirs.clone(), vec![2; 64]),
        (signed.clone(), signature),
    ];
    let target = format!("{OUR}@{saver}");
    world
        .kernel
        .harness()
        .submit(remote_request("bob.os@chat:chat:bob.os", &target, request))
        .unwrap();
    world.settle();
    let held = world.kernel.capabilities_of(&saver);
    for forged in [&kernel_messaging, &vfs_root, &our_literal] {
        assert!(!held.contains(forged), "{forged} was saved: {held:#?}");
    }
    assert!(
        held.contains(&theirs),
        "another node's capability is its own word"
    );
    assert!(
        held.contains(&signed),
        "a capability we signed verifies: {held:#?}"
    );
    let pruned: Vec<&Event> = world
        .kernel
        .trace()
        .records()
        .iter()
        .map(|r| &r.event)
        .filter(|e| matches!(e, Event::CapabilitiesPruned { .. }))
        .collect();
    let [
        Event::CapabilitiesPruned {
            id, capabilities, ..
        },
    ] = pruned.as_slice()
    else {
        panic!("one pruning: {pruned:#?}");
    };
    assert_eq!((*id, capabilities.len()), (77, 3));
    world.kernel.check_invariants().unwrap();
}

#[test]
fn a_remote_message_whose_source_claims_our_node_is_dropped() {
    let (mut world, saver) = world_with_saver();
    let kill = serde_json::to_vec(&KernelCommand::KillProcess(saver.clone())).unwrap();
    let kernel = format!("{OUR}@kernel:distro:sys");
    for source in [kernel.as_str(), "our@kernel:distro:sys"] {
        let command = remote_request(source, &kernel, Request::new(kill.clone()).expecting(5));
        world.kernel.harness().submit(command).unwrap();
    }
    // Claiming a local process: the saver would obey it.
    let client = format!("{OUR}@tester:tester:sys");
    let target = format!("{OUR}@{saver}");
    world
        .kernel
        .harness()
        .submit(remote_request(&client, &target, Request::new("obey")))
        .unwrap();
    world.settle();
    assert!(
        world.kernel.has_process(&saver),
        "the spoofed kill was executed"
    );
    assert_eq!(world.drops(), vec!["SpoofedSource"; 3]);
    assert!(
        world.replies().is_empty(),
        "no answer goes to the spoofed client"
    );
    let delivered = world
        .kernel
        .trace()
        .records()
        .iter()
        .filter(|r| matches!(&r.event, Event::Delivered { process, .. } if *process == saver))
        .count();
    assert_eq!(delivered, 0);
}

#[test]
fn a_node_never_relays_a_message_between_two_other_nodes() {
    let mut config = hyperkernel::KernelConfig::new(OUR, 1);
    config.network = true;
    let mut world = World::with_configs(config, hyperkernel::WasmConfig::default());
    world.driven("net", &[Capability::network(OUR)], true);
    let relayed = remote_request(
        "bob.os@chat:chat:bob.os",
        "carol.os@net:test:our.os",
        Request::new("pass it on").expecting(5),
    );
    world.kernel.harness().submit(relayed).unwrap();
    world.settle();
    assert!(world.kernel.take_outbound().is_none(), "relayed");
    assert_eq!(world.drops(), vec!["Relay"]);
    // A message from another node to ours still arrives.
    let net = pid("net:test:our.os");
    let plain = remote_request(
        "bob.os@chat:chat:bob.os",
        "our.os@net:test:our.os",
        Request::new("hi"),
    );
    world.kernel.harness().submit(plain).unwrap();
    world.settle();
    assert_eq!(world.received(&net).len(), 1);
}

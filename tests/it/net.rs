//! `net:distro:sys`: the reference's requests in its MessagePack bodies, answered from the
//! node's view of the network (the directory its driver gives, the peers its messages came
//! from); signatures that verify only for the node that made them; not public.

use hyperkernel::types::net::{Identity, NetAction, NetResponse, NodeRouting};
use hyperkernel::{
    Address, Capability, Input, Kernel, KernelBuilder, KernelConfig, KernelMessage, LazyLoadBlob,
    Message, Output, ProcessId, Request, Step,
};

const OUR: &str = "our.os";

fn net_kernel(net: bool) -> (Kernel, ProcessId) {
    let mut config = KernelConfig::new(OUR, 5);
    config.net = net;
    config.network = true;
    let mut kernel = KernelBuilder::new(OUR, 5).config(config).build().unwrap();
    let client: ProcessId = "client:test:our.os".parse().unwrap();
    let net_cap = Capability::messaging(format!("{OUR}@net:distro:sys").parse().unwrap());
    let register = Input::Register {
        process: client.clone(),
        capabilities: vec![net_cap],
        public: true,
        protected: false,
    };
    kernel.input(register).unwrap();
    (kernel, client)
}

fn net() -> Address {
    format!("{OUR}@net:distro:sys").parse().unwrap()
}

/// Sends `action` (with `blob`) to the net module as `client` and returns its answer.
fn ask(
    kernel: &mut Kernel,
    client: &ProcessId,
    action: &NetAction,
    blob: Option<Vec<u8>>,
) -> (NetResponse, Option<Vec<u8>>) {
    let body = hyperkernel::types::net::encode(action).unwrap();
    let send = Input::Send {
        process: client.clone(),
        target: net(),
        request: Request::new(body).expecting(5),
        context: None,
        blob: blob.map(|bytes| LazyLoadBlob { mime: None, bytes }),
    };
    kernel.input(send).unwrap();
    settle(kernel);
    let Output::Received(Some(received)) = kernel
        .input(Input::Receive {
            process: client.clone(),
        })
        .unwrap()
    else {
        panic!("no answer to {action:?}");
    };
    let (received, blob) = *received;
    let Ok((_, Message::Response((response, _)))) = received else {
        panic!("not a response: {received:?}");
    };
    let answer = hyperkernel::types::net::decode(&response.body).unwrap();
    (answer, blob.map(|b| b.bytes))
}

fn settle(kernel: &mut Kernel) {
    for _ in 0..100 {
        if let Output::Stepped(Step::Idle(_) | Step::ShutDown) = kernel.input(Input::Step).unwrap()
        {
            return;
        }
    }
}

/// A request `id` from `source` to `target`, as a node's input carries it.
fn request(id: u64, source: &str, target: &str, request: Request) -> Box<KernelMessage> {
    Box::new(KernelMessage {
        id,
        source: source.parse().unwrap(),
        target: target.parse().unwrap(),
        rsvp: None,
        message: Message::Request(request),
        lazy_load_blob: None,
    })
}

/// Whether the net module verifies `signature` as `from`'s over `from` and `blob`.
fn verified(
    kernel: &mut Kernel,
    client: &ProcessId,
    from: &Address,
    signature: &[u8],
    blob: &[u8],
) -> bool {
    let action = NetAction::Verify {
        from: from.clone(),
        signature: signature.to_vec(),
    };
    match ask(kernel, client, &action, Some(blob.to_vec())).0 {
        NetResponse::Verified(valid) => valid,
        other => panic!("Verify answered {other:?}"),
    }
}

fn identity(name: &str, key: &[u8; 32]) -> Identity {
    Identity {
        name: name.into(),
        networking_key: hyperkernel::process::net::key_string(key),
        routing: NodeRouting::Direct {
            ip: "127.0.0.1".into(),
            ports: Default::default(),
        },
    }
}

#[test]
fn the_references_requests_are_answered_from_the_nodes_view() {
    let (mut kernel, client) = net_kernel(true);
    // Our own identity, with our key; no peers yet; the directory is empty.
    let (answer, _) = ask(&mut kernel, &client, &NetAction::GetPeer(OUR.into()), None);
    assert_eq!(answer, NetResponse::Peer(Some(kernel.identity())));
    let (answer, _) = ask(&mut kernel, &client, &NetAction::GetPeers, None);
    assert_eq!(answer, NetResponse::Peers(vec![]));
    let (answer, _) = ask(
        &mut kernel,
        &client,
        &NetAction::GetPeer("b.os".into()),
        None,
    );
    assert_eq!(answer, NetResponse::Peer(None));
    // The driver gives the directory; a message from b.os makes it a peer.
    let b_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let b = identity("b.os", &b_key.verifying_key().to_bytes());
    kernel.input(Input::Identities(vec![b.clone()])).unwrap();
    let hello = request(
        1,
        "b.os@chat:chat:b.os",
        "our.os@client:test:our.os",
        Request::new("hi"),
    );
    kernel.input(Input::Submit(hello)).unwrap();
    settle(&mut kernel);
    let _ = kernel.input(Input::Receive {
        process: client.clone(),
    });
    let (answer, _) = ask(&mut kernel, &client, &NetAction::GetPeers, None);
    assert_eq!(answer, NetResponse::Peers(vec![b.clone()]));
    let (answer, _) = ask(
        &mut kernel,
        &client,
        &NetAction::GetPeer("b.os".into()),
        None,
    );
    assert_eq!(answer, NetResponse::Peer(Some(b.clone())));
    let (NetResponse::Diagnostics(text), _) =
        ask(&mut kernel, &client, &NetAction::GetDiagnostics, None)
    else {
        panic!("no diagnostics");
    };
    assert!(text.contains("connections with 1 peers") && text.contains("1 entries in the PKI"));
    // A message of ours that cannot reach b.os: b is no longer a peer.
    let from_client = format!("{OUR}@{client}");
    let lost = request(9, &from_client, "b.os@chat:chat:b.os", Request::new("x"));
    kernel.input(Input::Unreachable(lost)).unwrap();
    let (answer, _) = ask(&mut kernel, &client, &NetAction::GetPeers, None);
    assert_eq!(answer, NetResponse::Peers(vec![]));
}

#[test]
fn signatures_verify_only_for_the_node_that_made_them() {
    let (mut kernel, client) = net_kernel(true);
    let b_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let b = identity("b.os", &b_key.verifying_key().to_bytes());
    kernel.input(Input::Identities(vec![b])).unwrap();
    // Sign: our key over the sender's address and the blob; Verify says so, and only so.
    let (answer, signature) = ask(&mut kernel, &client, &NetAction::Sign, Some(b"doc".into()));
    assert_eq!(answer, NetResponse::Signed);
    let signature = signature.expect("the signature is the blob");
    assert_eq!(signature.len(), 64);
    let from: Address = format!("{OUR}@{client}").parse().unwrap();
    let k = &mut kernel;
    assert!(verified(k, &client, &from, &signature, b"doc"));
    assert!(
        !verified(k, &client, &from, &signature, b"dog"),
        "another blob"
    );
    // Claimed by b.os: checked against b's key from the directory, so ours fails and b's
    // own signature passes.
    let b_from: Address = "b.os@chat:chat:b.os".parse().unwrap();
    assert!(!verified(k, &client, &b_from, &signature, b"doc"));
    use ed25519_dalek::Signer;
    let message = [b_from.to_string().as_bytes(), b"doc"].concat();
    let theirs = b_key.sign(&message).to_bytes();
    assert!(verified(k, &client, &b_from, &theirs, b"doc"));
    // A node the directory does not hold verifies nothing (the reference would try our key).
    let c_from: Address = "c.os@chat:chat:c.os".parse().unwrap();
    assert!(!verified(k, &client, &c_from, &signature, b"doc"));
}

#[test]
fn another_nodes_hi_is_acked_and_the_module_is_not_public() {
    let (mut kernel, _) = net_kernel(true);
    // A body from another node that is no NetAction is a "hi": printed, answered `ack`.
    let hello = Request::new("hello there").expecting(5);
    let hi = request(
        4,
        "b.os@settings:settings:sys",
        "our.os@net:distro:sys",
        hello,
    );
    kernel.input(Input::Submit(hi)).unwrap();
    settle(&mut kernel);
    let ack = kernel.take_outbound().expect("an answer to b.os");
    assert_eq!(ack.target.node.as_ref(), "b.os");
    assert_eq!(ack.source, net());
    let Message::Response((response, _)) = &ack.message else {
        panic!("{ack:?}");
    };
    assert_eq!(response.body, b"ack");
    // A process without its messaging capability cannot reach it.
    let stranger: ProcessId = "stranger:test:our.os".parse().unwrap();
    let register = Input::Register {
        process: stranger.clone(),
        capabilities: vec![],
        public: false,
        protected: false,
    };
    kernel.input(register).unwrap();
    let send = Input::Send {
        process: stranger.clone(),
        target: net(),
        request: Request::new(hyperkernel::types::net::encode(&NetAction::GetPeers).unwrap())
            .expecting(5),
        context: None,
        blob: None,
    };
    kernel.input(send).unwrap();
    settle(&mut kernel);
    let Output::Received(Some(received)) =
        kernel.input(Input::Receive { process: stranger }).unwrap()
    else {
        panic!("no error back");
    };
    assert!(received.0.is_err(), "{:?}", received.0);
    // Without `KernelConfig::net` there is no module at all.
    let (bare, _) = net_kernel(false);
    assert!(!bare.has_process(&"net:distro:sys".parse().unwrap()));
}

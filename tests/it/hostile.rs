//! Hostile input (issue 10): one regression test per class of input that panicked, hung or
//! exhausted the kernel. Each fails on the code before its fix.

use crate::harness::World;
use hyperkernel::{Request, Response, Timestamp};

const SECOND: u64 = 1_000_000_000;
use serde_json::json;

/// Class 1: a request sent with `inherit` and `expects_response` takes the prompting
/// request's id; a second one while the first's answer was queued overwrote its context, and
/// the next receive panicked. Now the colliding id is replaced by a fresh one: both answers
/// arrive with their own contexts, and the restored prompting message still answers the
/// original requester.
#[test]
fn inherited_ids_that_collide_keep_every_answer_and_context() {
    let mut world = World::new(5);
    let a = world.driven("a", &[], true);
    let b = world.driven("b", &[], true);
    let c = world.driven("c", &[], true);
    world.send(
        &a,
        "our.os@b:test:our.os",
        Request::new("job").expecting(30),
        None,
    );
    assert_eq!(world.received(&b).len(), 1, "b is prompted by a's request");
    for (body, context) in [("first", "ctx-1"), ("second", "ctx-2")] {
        let mut forward = Request::new(body).expecting(30);
        forward.inherit = true;
        world.send(&b, "our.os@c:test:our.os", forward, Some(context));
        assert_eq!(world.received(&c).len(), 1);
        let answer = format!("answer to {body}");
        world
            .kernel
            .harness()
            .respond_as(&c, Response::new(answer), None)
            .unwrap();
        world.settle();
        world.kernel.check_invariants().unwrap();
    }
    let got: Vec<_> = world
        .received(&b)
        .iter()
        .map(|r| (r["body"].clone(), r["context"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("answer to first"), json!("ctx-1")),
            (json!("answer to second"), json!("ctx-2")),
        ]
    );
    // The prompting message restored with each answer is a's request.
    world
        .kernel
        .harness()
        .respond_as(&b, Response::new("done"), None)
        .unwrap();
    world.settle();
    let to_a = world.received(&a);
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_a[0]["body"], json!("done"));
    world.kernel.harness().run_until_idle();
    world.kernel.check_invariants().unwrap();
}

/// Class 1, the interleaving without an answer queued: two inherited requests that both time
/// out give two timeouts, each at its own deadline (the reference loses the first, W18).
#[test]
fn inherited_ids_that_collide_each_time_out_on_their_own() {
    let mut world = World::new(5);
    let a = world.driven("a", &[], true);
    let b = world.driven("b", &[], true);
    world.driven("silent", &[], true);
    world.send(&a, "our.os@b:test:our.os", Request::new("job"), None);
    assert_eq!(world.received(&b).len(), 1);
    for seconds in [5, 10] {
        let mut request = Request::new("sub-job").expecting(seconds);
        request.inherit = true;
        world.send(&b, "our.os@silent:test:our.os", request, None);
    }
    world.kernel.harness().run_until(Timestamp(6 * SECOND));
    let first = world.received(&b);
    assert_eq!(first.len(), 1, "the 5 s request timed out alone");
    assert_eq!(first[0]["error"], json!("Timeout"));
    world.kernel.check_invariants().unwrap();
    world.kernel.harness().run_until_idle();
    let second = world.received(&b);
    assert_eq!(second.len(), 1, "the 10 s request timed out too");
    assert_eq!(world.kernel.now(), Timestamp(10 * SECOND));
    world.kernel.check_invariants().unwrap();
}

fn error_kinds(replies: &[serde_json::Value]) -> Vec<String> {
    replies
        .iter()
        .map(|r| {
            let body = &r["body"];
            let error = body
                .get("Error")
                .cloned()
                .or_else(|| r["metadata"].clone().into());
            error
                .and_then(|e| e.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_else(|| body.to_string())
        })
        .collect()
}

/// Class 13: a client cannot create, replace, kill or reconfigure the kernel's own processes.
#[test]
fn the_kernels_own_processes_cannot_be_created_killed_or_reconfigured() {
    use hyperkernel::{Capability, KernelCommand, LazyLoadBlob, OnExit, ProcessId};
    let mut world = World::new(3);
    // Creating a process under a runtime name is refused.
    for name in ["vfs:distro:sys", "state:distro:sys", "timer:distro:sys"] {
        let init = KernelCommand::InitializeProcess {
            id: name.parse().unwrap(),
            wasm_bytes_handle: "/x:our.os/pkg/p.wasm".into(),
            wit_version: Some(1),
            on_exit: OnExit::None,
            initial_capabilities: vec![],
            public: true,
        };
        let blob = LazyLoadBlob {
            mime: None,
            bytes: b"puppet".to_vec(),
        };
        world.command_with_blob(&init, Some(5), Some(blob));
        let replies = world.replies();
        assert_eq!(
            replies[0]["body"],
            json!("InitializeProcessError"),
            "{name}"
        );
        assert_eq!(error_kinds(&replies), vec!["KernelProcess"], "{name}");
    }
    // Killing, or reconfiguring, the timer or the kernel is refused; the timer lives on.
    let timer = ProcessId::timer();
    let kernel = ProcessId::kernel();
    let commands = [
        KernelCommand::KillProcess(timer.clone()),
        KernelCommand::SetOnExit {
            target: kernel.clone(),
            on_exit: OnExit::None,
        },
        KernelCommand::SetOnExit {
            target: timer.clone(),
            on_exit: OnExit::Restart,
        },
        KernelCommand::DropCapabilities {
            target: kernel.clone(),
            capabilities: vec![Capability::network("our.os")],
        },
        KernelCommand::DropCapabilities {
            target: timer.clone(),
            capabilities: vec![Capability::network("our.os")],
        },
    ];
    for command in &commands {
        world.command(command, Some(5));
        assert_eq!(
            error_kinds(&world.replies()),
            vec!["KernelProcess"],
            "{command:?}"
        );
    }
    assert!(world.kernel.has_process(&timer));
    assert!(
        world
            .kernel
            .capabilities_of(&timer)
            .contains(&Capability::network("our.os"))
    );
}

/// Class 13: a process the driver registers under a privileged name (not a runtime module)
/// passes no check it would not pass under any other name.
#[test]
fn a_privileged_name_alone_passes_no_check() {
    use hyperkernel::ProcessId;
    let mut world = World::new(3);
    let vfs: ProcessId = "vfs:distro:sys".parse().unwrap();
    world
        .kernel
        .harness()
        .register_driven(&vfs, &[], false)
        .unwrap();
    let private = world.driven("private", &[], false);
    world.send(
        &vfs,
        "our.os@private:test:our.os",
        Request::new("hi").expecting(5),
        None,
    );
    assert!(
        world.received(&private).is_empty(),
        "no message got through"
    );
    assert_eq!(world.drops(), vec!["NoMessagingCapability"]);
    world.kernel.check_invariants().unwrap();
}

/// Class 11: the duplicate check of a grant was quadratic (100 000 capabilities: 40 s). Now
/// it is a set; this grant of 20 000 with every one repeated stores each once (the bench
/// `hostile` measures the speed).
#[test]
fn a_large_grant_with_duplicates_stores_each_capability_once() {
    use hyperkernel::{Capability, KernelCommand};
    let mut world = World::new(3);
    let target = world.driven("target", &[], false);
    let caps: Vec<Capability> = (0..20_000)
        .map(|n| {
            Capability::new(
                "our.os@tester:tester:sys".parse().unwrap(),
                format!("{{\"n\":{}}}", n % 10_000),
            )
        })
        .collect();
    world.command(
        &KernelCommand::GrantCapabilities {
            target: target.clone(),
            capabilities: caps,
        },
        Some(5),
    );
    assert_eq!(world.replies()[0]["body"], json!("GrantedCapabilities"));
    // Its own messaging capability plus the 10 000 distinct ones.
    assert_eq!(world.kernel.capabilities_of(&target).len(), 10_001);
    world.kernel.check_invariants().unwrap();
}

/// Class 8: a 60 MiB blob that is no code. The loader's reason quoted the whole blob (a 300 MB
/// string), the reply then outgrew the message cap and was dropped, and the client timed out.
/// Now every error text is bounded and the reply arrives.
#[test]
fn a_huge_unloadable_blob_gets_its_error_reply_with_a_bounded_reason() {
    use hyperkernel::{KernelCommand, LazyLoadBlob, OnExit};
    let mut world = World::new(3);
    let init = KernelCommand::InitializeProcess {
        id: "app:test:our.os".parse().unwrap(),
        wasm_bytes_handle: "/test:our.os/pkg/app.wasm".into(),
        wit_version: Some(1),
        on_exit: OnExit::None,
        initial_capabilities: vec![],
        public: false,
    };
    let blob = LazyLoadBlob {
        mime: None,
        bytes: vec![b'"'; 60 << 20],
    };
    world.command_with_blob(&init, Some(5), Some(blob));
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "the reply arrives");
    assert_eq!(replies[0]["body"], json!("InitializeProcessError"));
    let reason = replies[0]["metadata"].to_string();
    assert!(
        reason.len() < 2 * hyperkernel::wire::ERROR_TEXT_MAX,
        "{} bytes",
        reason.len()
    );
    assert!(
        reason.contains("62914560 bytes"),
        "names the size: {reason}"
    );
    for record in world.kernel.trace().records() {
        let json = serde_json::to_string(&record.event).unwrap();
        assert!(
            json.len() < 64 << 10,
            "a trace event of {} bytes",
            json.len()
        );
    }
}

/// Class 16: capability params with an integer beyond 64 bits were stored and signed as a
/// float. Now they are refused at the kernel boundary.
#[test]
fn params_with_integers_beyond_64_bits_are_refused() {
    use hyperkernel::{Capability, KernelCommand};
    let mut world = World::new(3);
    let target = world.driven("target", &[], false);
    let cap = Capability::new(
        "our.os@tester:tester:sys".parse().unwrap(),
        r#"{"n":123456789012345678901234567890}"#,
    );
    world.command(
        &KernelCommand::GrantCapabilities {
            target: target.clone(),
            capabilities: vec![cap],
        },
        Some(5),
    );
    let replies = world.replies();
    assert_eq!(
        replies[0]["body"]["Error"]["kind"],
        json!("InvalidCapability")
    );
    assert_eq!(
        world.kernel.capabilities_of(&target).len(),
        1,
        "only its own"
    );
}

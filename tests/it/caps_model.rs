//! Property test of the capability rules against a small reference model.
//!
//! Goal: after any sequence of initialize, grant, drop, kill and messages, the kernel lets a
//! process message another exactly when the model says it may. Method: proptest's state
//! machine generates sequences over three puppet processes; the model tracks who is alive,
//! who is public and who holds `messaging(x)`; each `Send` orders a puppet to ping another and
//! checks the reported round trip (request and response are both checked, spec §3.3) against
//! the model; after every step the kernel's held capabilities must equal the model's and the
//! kernel's invariants must hold. Failures are persisted under `proptest-regressions/`.

use crate::harness::{World, messaging, pid};
use hyperkernel::{Capability, KernelCommand, LazyLoadBlob, OnExit, ProcessId, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const NAMES: [&str; 3] = ["a", "b", "c"];

fn id(name: &str) -> String {
    format!("{name}:test:our.os")
}

#[derive(Clone, Debug)]
enum Op {
    Init {
        name: &'static str,
        public: bool,
        caps: Vec<&'static str>,
    },
    Grant {
        target: &'static str,
        of: &'static str,
    },
    GrantClient {
        of: &'static str,
    },
    Drop {
        target: &'static str,
        of: &'static str,
    },
    Kill {
        name: &'static str,
    },
    Send {
        from: &'static str,
        to: &'static str,
    },
}

#[derive(Clone, Debug, Default)]
struct Model {
    public: BTreeMap<&'static str, bool>,
    // Invariant: keys are exactly the alive processes.
    held: BTreeMap<&'static str, BTreeSet<&'static str>>,
    client_holds: BTreeSet<&'static str>,
}

impl Model {
    fn alive(&self, name: &str) -> bool {
        self.held.contains_key(name)
    }

    fn may_message(&self, from: &str, to: &'static str) -> bool {
        self.alive(to) && (self.public[to] || self.held.get(from).is_some_and(|h| h.contains(to)))
    }

    /// What the client hears after ordering `from` to ping `to`.
    fn outcome(&self, from: &'static str, to: &'static str) -> Option<&'static str> {
        let reachable = self.alive(from) && (self.public[from] || self.client_holds.contains(from));
        if !reachable {
            return None;
        }
        let round_trip = self.may_message(from, to) && self.may_message(to, from);
        Some(if round_trip { "delivered" } else { "refused" })
    }
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(NAMES.to_vec())
}

struct CapRules;

impl ReferenceStateMachine for CapRules {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<Op> {
        prop_oneof![
            3 => (name(), any::<bool>(), prop::collection::vec(name(), 0..3)).prop_map(|(name, public, caps)| Op::Init { name, public, caps }),
            2 => (name(), name()).prop_map(|(target, of)| Op::Grant { target, of }),
            1 => name().prop_map(|of| Op::GrantClient { of }),
            1 => (name(), name()).prop_map(|(target, of)| Op::Drop { target, of }),
            1 => name().prop_map(|name| Op::Kill { name }),
            4 => (name(), name()).prop_map(|(from, to)| Op::Send { from, to }),
        ]
        .boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        match op.clone() {
            Op::Init { name, public, caps } if !state.alive(name) => {
                let mut held: BTreeSet<&'static str> = caps
                    .into_iter()
                    .filter(|c| state.client_holds.contains(c))
                    .collect();
                held.insert(name);
                state.held.insert(name, held);
                state.public.insert(name, public);
                state.client_holds.insert(name);
            }
            Op::Grant { target, of } => {
                if let Some(held) = state.held.get_mut(target) {
                    held.insert(of);
                }
            }
            Op::GrantClient { of } => {
                state.client_holds.insert(of);
            }
            Op::Drop { target, of } => {
                if let Some(held) = state.held.get_mut(target) {
                    held.remove(of);
                }
            }
            Op::Kill { name } if state.alive(name) => {
                state.held.remove(name);
                state.public.remove(name);
                state.client_holds.remove(name);
                for held in state.held.values_mut() {
                    held.remove(name);
                }
            }
            Op::Init { .. } | Op::Kill { .. } | Op::Send { .. } => {}
        }
        state
    }
}

/// The kernel command of a grant, drop or kill.
fn capability_command(op: &Op, client: &ProcessId) -> KernelCommand {
    let grant = |target: ProcessId, of: &str| KernelCommand::GrantCapabilities {
        target,
        capabilities: vec![messaging(&id(of))],
    };
    match op {
        Op::Grant { target, of } => grant(pid(&id(target)), of),
        Op::GrantClient { of } => grant(client.clone(), of),
        Op::Drop { target, of } => KernelCommand::DropCapabilities {
            target: pid(&id(target)),
            capabilities: vec![messaging(&id(of))],
        },
        Op::Kill { name } => KernelCommand::KillProcess(pid(&id(name))),
        Op::Init { .. } | Op::Send { .. } => unreachable!("not a capability command: {op:?}"),
    }
}

/// Initializes and runs puppet `name`, from the client.
fn apply_init(world: &mut World, name: &str, public: bool, caps: &[&'static str]) {
    let init = KernelCommand::InitializeProcess {
        id: pid(&id(name)),
        wasm_bytes_handle: String::new(),
        wit_version: Some(1),
        on_exit: OnExit::None,
        initial_capabilities: caps.iter().map(|c| messaging(&id(c))).collect(),
        public,
    };
    world.command_with_blob(
        &init,
        None,
        Some(LazyLoadBlob {
            mime: None,
            bytes: b"puppet".to_vec(),
        }),
    );
    world.command(&KernelCommand::RunProcess(pid(&id(name))), None);
}

/// Orders puppet `from` to ping `to`; returns the outcomes the client heard.
fn apply_send(world: &mut World, from: &str, to: &str) -> Vec<serde_json::Value> {
    let order = json!({ "send_to": format!("our.os@{}", id(to)) }).to_string();
    let target = format!("our.os@{}", id(from)).parse().unwrap();
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(&client, target, Request::new(order), None, None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    world
        .replies()
        .iter()
        .map(|r| r["body"]["outcome"].clone())
        .collect()
}

struct KernelUnderTest;

impl StateMachineTest for KernelUnderTest {
    type SystemUnderTest = World;
    type Reference = CapRules;

    fn init_test(_model: &Model) -> World {
        World::new(11)
    }

    fn apply(mut world: World, model: &Model, op: Op) -> World {
        match &op {
            Op::Init { name, public, caps } => apply_init(&mut world, name, *public, caps),
            Op::Send { from, to } => {
                let reports = apply_send(&mut world, from, to);
                let expected: Vec<_> = model
                    .outcome(from, to)
                    .into_iter()
                    .map(|o| json!(o))
                    .collect();
                assert_eq!(reports, expected, "{op:?} with model {model:?}");
            }
            _ => {
                let command = capability_command(&op, &world.client);
                world.command(&command, None);
            }
        }
        world.replies();
        world
    }

    fn check_invariants(world: &World, model: &Model) {
        world.kernel.check_invariants().unwrap();
        world.kernel.capabilities().verify_signatures().unwrap();
        for from in NAMES {
            assert_eq!(
                world.kernel.has_process(&pid(&id(from))),
                model.alive(from),
                "{from} alive"
            );
            let Some(held) = model.held.get(from) else {
                continue;
            };
            for to in NAMES {
                let kernel_says = world
                    .kernel
                    .capabilities()
                    .has_messaging(&pid(&id(from)), &pid(&id(to)));
                assert_eq!(
                    kernel_says,
                    held.contains(to),
                    "{from} holds messaging({to})"
                );
            }
        }
        for of in NAMES {
            let held = world
                .kernel
                .capabilities()
                .has_messaging(&world.client, &pid(&id(of)));
            assert_eq!(
                held,
                model.client_holds.contains(of),
                "client holds messaging({of})"
            );
        }
        let network = world.kernel.capabilities().has_network(&world.client);
        assert!(
            !network,
            "nobody granted the client {:?}",
            Capability::network("our.os")
        );
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: 128,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/caps_model.txt"),
        ))),
        .. Config::default()
    })]
    #[test]
    fn capability_rules_match_the_model(sequential 1..40 => KernelUnderTest);
}

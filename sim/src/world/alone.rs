//! A node of a world run again alone from its inputs (the world invariant W9): a kernel as
//! the node's was when it booted, given every input the node was given, in order, must record
//! the same trace, event for event. It holds when nothing reached the node except through
//! `Kernel::input` and its fault hook, whose answers replay from the node's seed and the
//! schedule of its fault settings (`inside.rs`); a node that crashed (it came back from its
//! store), or whose life injects faults beside its inputs (process crashes, disk faults,
//! reboots), is not judged. Also: the driven processes' answers taken through inputs.

use super::{Node, World, WorldError};
use hyperkernel::{Input, Output};

impl World {
    /// Runs node `index` again alone from its inputs: `None` when it cannot be judged (see
    /// the module docs), else whether its trace came out the same.
    pub fn replay_alone(&self, index: usize) -> Option<Result<(), String>> {
        let node: &Node = self.nodes.get(index)?;
        let inputs = node.inputs.as_ref()?;
        let mut kernel = node.life.as_ref()?.fresh(true)?;
        for input in inputs {
            let _ = kernel.input(input.clone());
        }
        let (alone, there) = (kernel.trace(), node.kernel.trace());
        if alone.hash() == there.hash() && alone.len() == there.len() {
            return Some(Ok(()));
        }
        let report = crate::tools::replay::diff_report(there.records(), alone.records(), 2)
            .unwrap_or_else(|| "the traces differ in length".into());
        Some(Err(format!(
            "W9: node {} run alone from its {} inputs parts from its run in the world: {report}",
            node.name,
            inputs.len()
        )))
    }

    /// The driven processes of node `index` take what arrived for them, through inputs;
    /// nothing may arrive before the step that sent it was synced.
    pub(super) fn take_answers(&mut self, index: usize) -> Result<(), WorldError> {
        let node = &mut self.nodes[index];
        let Some(driven) = node.life.as_ref().map(|life| life.driven()) else {
            return Ok(());
        };
        for process in driven {
            let receive = || Input::Receive {
                process: process.clone(),
            };
            while let Ok(Output::Received(Some(_))) = node.feed(receive()) {
                let (commits, synced) = node.kernel.commits();
                if commits != synced {
                    return Err(WorldError {
                        pass: self.passes,
                        node: Some(node.name.clone()),
                        broken: format!("{process} received an answer before its step was synced"),
                    });
                }
            }
        }
        Ok(())
    }
}

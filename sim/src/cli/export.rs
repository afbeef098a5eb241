//! `sim export TRACE --format chrome -o OUT [--time order|sim]`: a trace as Chrome trace-event
//! JSON (`hyperkernel_sim::view::chrome`), written atomically, with a line saying what it holds.

use hyperkernel_sim::tools::replay::TRACE_LEN_MAX;
use hyperkernel_sim::view::{chrome, model};
use std::io::Write as _;
use std::path::Path;

/// Runs `sim export`; it reports no failed run (bad input is an error).
pub(crate) fn dispatch(command: crate::Command) -> anyhow::Result<bool> {
    let crate::Command::Export {
        trace,
        output,
        time,
        format: _,
    } = command
    else {
        anyhow::bail!("not an export");
    };
    export(&trace, &output, &time)?;
    Ok(false)
}

/// Exports `trace` to `output` on the time axis `time` (`order` or `sim`).
pub(crate) fn export(trace: &Path, output: &Path, time: &str) -> anyhow::Result<()> {
    let text = hyperkernel_sim::files::read_text(trace, TRACE_LEN_MAX)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let view = model::view_of(&text).map_err(|e| anyhow::anyhow!("{}: {e}", trace.display()))?;
    let axis = if time == "sim" {
        chrome::Axis::Simulated
    } else {
        chrome::Axis::Order
    };
    let mut json = Vec::with_capacity(view.events.len() * 480);
    chrome::write_chrome(&view, axis, &mut json)?;
    let json = String::from_utf8(json)?;
    crate::write_atomically(output, &json)?;
    let flows = view
        .events
        .iter()
        .filter(|e| e.flow.is_some_and(|f| f.leaves && !f.arrives))
        .count();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} ({} events on {} lanes of {} nodes, {flows} message flows, {} bytes); open it \
         in ui.perfetto.dev or chrome://tracing",
        output.display(),
        view.events.len(),
        view.lanes.len(),
        view.nodes.len(),
        json.len()
    )?;
    Ok(())
}

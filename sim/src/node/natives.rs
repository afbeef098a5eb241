//! The simulator's native processes: `echo` (answers each request with its body), `sink`
//! (takes everything), and the kit tester; the loader that makes them from their names.

use hyperkernel::{Flow, Message, NativeLoader, Process, ProcessContext, Response, Wake};
use std::sync::Arc;

/// Answers every request with its body.
pub fn echo() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            ctx.send_response(Response::new(request.body), None);
        }
        Flow::Receive
    })
}

/// Takes everything, answers nothing.
pub fn sink() -> Box<dyn Process> {
    Box::new(|_: &mut ProcessContext<'_>, _: Wake| Flow::Receive)
}

/// The loader of the natives by name: `echo`, `sink`, and the tester of `apps`' kit tests.
pub fn natives(apps: &Arc<crate::node::apps::Loaded>) -> NativeLoader {
    let apps = Arc::clone(apps);
    NativeLoader::new()
        .with("echo", echo)
        .with("sink", sink)
        .with(crate::node::apps::TESTER_CODE, move || {
            Box::new(crate::node::apps::Tester::new(Arc::clone(&apps)))
        })
}

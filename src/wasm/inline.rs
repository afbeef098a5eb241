//! Blob queries answered inside the host function, without suspending the guest, when the
//! host already knows the answer: `has-blob` always, `get-blob` and `last-blob` when there is
//! no blob to return (the answer is `none`, so nothing is allocated in the guest). A blob that
//! exists is still served by suspension, through the kernel, as before.
//!
//! What the host knows is a snapshot of the kernel's blob state for this process (`Blobs`).
//! That state changes only when a message is delivered, so the snapshot is taken when a
//! delivery wakes the process and stays valid until the next one. To spare processes that
//! never ask, it is taken only once the process has asked through a suspension at least once.
//!
//! Answers are the same bytes the suspending path writes, at the same points of the guest's
//! run, so traces and fuel are unchanged; a query made from inside `cabi_realloc` still
//! suspends (and so fails the guest, as before).

use super::HostData;
use super::wit::{self, Func};
use crate::kernel::ProcessContext;
use wasmi::Caller;

/// What `has-blob`, `get-blob` and `last-blob` would find now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blobs {
    /// The last delivered message carried a blob (`has-blob`).
    current: bool,
    /// A message delivered a blob at some point (`last-blob` is not `none`).
    last: bool,
}

impl Blobs {
    pub(crate) fn of(ctx: &ProcessContext<'_>) -> Self {
        let (current, last) = ctx.blob_presence();
        Self { current, last }
    }
}

/// Serves `func` in place if it is a blob query whose answer is known; `Ok(false)` when the
/// guest must suspend instead.
pub(crate) fn serve(
    caller: &mut Caller<'_, HostData>,
    func: Func,
    args: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<bool, wasmi::Error> {
    let data = caller.data();
    let Some(blobs) = data.blobs.filter(|_| !data.lowering) else {
        return Ok(false);
    };
    let present = match func {
        Func::HasBlob => {
            let Some(slot) = results.first_mut() else {
                return Ok(false);
            };
            *slot = wasmi::Val::I32(i32::from(blobs.current));
            return Ok(true);
        }
        Func::GetBlob => blobs.current && blobs.last,
        Func::LastBlob => blobs.last,
        _ => return Ok(false),
    };
    if present {
        return Ok(false);
    }
    let (Some(memory), Some(wasmi::Val::I32(retptr))) = (data.memory, args.first()) else {
        return Ok(false);
    };
    let size = wit::import_of(func)
        .result
        .as_ref()
        .map_or(0, |r| r.size as usize);
    // `none`: the discriminant 0 and a zeroed payload, the image the lowering writes. A bad
    // pointer suspends, so the guest fails exactly as it did before.
    let image = [0u8; 32];
    let Some(image) = image.get(..size) else {
        return Ok(false);
    };
    Ok(memory
        .write(&mut *caller, *retptr as u32 as usize, image)
        .is_ok())
}

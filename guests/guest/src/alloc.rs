//! A size-class allocator for guests (feature `fast-alloc`, on by default).
//!
//! The canonical ABI hands every string and list to the guest through its allocator, and
//! wit-bindgen frees each when the value drops, so a message costs a dozen allocations. On an
//! interpreter the general-purpose allocator's bookkeeping is a large share of a message's
//! cost. Small blocks (up to 4 KiB) therefore come from free lists, one per power-of-two size
//! class, carved from 16 KiB chunks of the system allocator; larger ones go to the system
//! allocator. A freed small block goes back to its class's list, so memory is reused and never
//! leaks; what a class once held stays in that class.
//!
//! wasm32-unknown-unknown without threads has one thread, so the state needs no lock; with the
//! `atomics` target feature (threads) the helper crate does not install it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

/// Size classes 16, 32, …, 4096 bytes.
const CLASSES: usize = 9;
const SMALLEST: usize = 16;
const LARGEST: usize = SMALLEST << (CLASSES - 1);
const CHUNK: usize = 16 * 1024;

struct State {
    /// Head of each class's free list (0: empty); a free block holds the next head.
    free: [usize; CLASSES],
    /// The unused rest of the current chunk.
    bump: usize,
    end: usize,
}

/// The allocator.
pub struct SizeClasses {
    state: UnsafeCell<State>,
}

// SAFETY: wasm32-unknown-unknown (without the atomics feature) runs one thread.
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    /// An empty allocator.
    pub const fn new() -> Self {
        Self {
            state: UnsafeCell::new(State {
                free: [0; CLASSES],
                bump: 0,
                end: 0,
            }),
        }
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

/// The class of `layout`, if it is small: blocks of a class are their size and aligned to it.
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(SMALLEST);
    if size > LARGEST {
        return None;
    }
    let block = size.next_power_of_two();
    Some(block.trailing_zeros() as usize - SMALLEST.trailing_zeros() as usize)
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: one thread; no reference to the state outlives this call.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if head != 0 {
            // SAFETY: `head` is a free block of this class; its first word is the next head.
            state.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let block = SMALLEST << class;
        let start = state.bump.next_multiple_of(block);
        if start == 0 || start + block > state.end {
            // SAFETY: a valid, non-zero layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, LARGEST)) };
            if chunk.is_null() {
                return chunk;
            }
            state.bump = chunk as usize + block;
            state.end = chunk as usize + CHUNK;
            return chunk;
        }
        state.bump = start + block;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            // SAFETY: it came from `System.alloc` with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        };
        // SAFETY: one thread; the block is at least a word and ours again.
        let state = unsafe { &mut *self.state.get() };
        unsafe { *(ptr as *mut usize) = state.free[class] };
        state.free[class] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `new_size` with the old alignment is a valid layout (GlobalAlloc contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(old), Some(new)) if old == new => return ptr,
            // SAFETY: both large: the block came from `System` with `layout`.
            (None, None) => return unsafe { System.realloc(ptr, layout, new_size) },
            _ => {}
        }
        // SAFETY: as `GlobalAlloc::realloc` requires.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

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
//! The first blocks come from the initial linear memory between `__heap_base` and its end,
//! which Rust's system allocator never uses (it takes memory only from `memory.grow`): a
//! small process then needs no `memory.grow` at all, so it spawns faster and holds 64 KiB
//! less.
//!
//! The crate also exports `cabi_realloc`, the function the host calls to place every string
//! and list it hands over. wit-bindgen's own export is weak and reaches the allocator through
//! two more calls; ours goes straight to the size classes.
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
    /// Whether the initial memory's free tail has been taken as the first chunk.
    started: bool,
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
                started: false,
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

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// Where the linker put the end of the stack and static data: the heap starts here.
    static __heap_base: u8;
    /// The end of the initial memory, as the linker laid it out.
    static __heap_end: u8;
}

/// The free tail of the initial memory, `[__heap_base, __heap_end)`, which the system
/// allocator never uses: it takes its memory from `memory.grow` only.
#[cfg(target_arch = "wasm32")]
fn initial_tail() -> (usize, usize) {
    (
        (&raw const __heap_base) as usize,
        (&raw const __heap_end) as usize,
    )
}

#[cfg(not(target_arch = "wasm32"))]
fn initial_tail() -> (usize, usize) {
    (0, 0)
}

impl SizeClasses {
    /// A freed block of `layout`'s class, if one waits: the hot path, inlined into
    /// `cabi_realloc` so a host allocation is one call.
    #[inline(always)]
    fn reuse(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread; no reference to the state outlives this call.
        let state = unsafe { &mut *self.state.get() };
        let Some(class) = class(layout) else {
            return std::ptr::null_mut();
        };
        let head = state.free[class];
        if head != 0 {
            // SAFETY: `head` is a free block of this class; its first word is the next head.
            state.free[class] = unsafe { *(head as *const usize) };
        }
        head as *mut u8
    }
}

impl State {
    /// On the first allocation: the initial memory's free tail becomes the first chunk.
    fn start(&mut self) {
        self.started = true;
        let (base, end) = initial_tail();
        let start = base.next_multiple_of(LARGEST);
        if start != 0 && start < end {
            self.bump = start;
            self.end = end;
        }
    }
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: one thread; no reference to the state outlives this call.
        let state = unsafe { &mut *self.state.get() };
        if !state.started {
            state.start();
        }
        let Some(class) = class(layout) else {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(layout) };
        };
        let reused = self.reuse(layout);
        if !reused.is_null() {
            return reused;
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

/// The canonical ABI's allocation entry point (see the module docs), for the host.
///
/// # Safety
/// Called by the host as the canonical ABI specifies: `old_ptr`/`old_len`/`align` describe a
/// block this allocator gave out (or `old_len` is 0), and `align` is a power of two.
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    let allocator = &crate::ALLOCATOR;
    let ptr = if old_len == 0 {
        if new_len == 0 {
            return align as *mut u8;
        }
        // SAFETY: non-zero size; the host passes a power-of-two alignment.
        let layout = unsafe { Layout::from_size_align_unchecked(new_len, align) };
        let reused = allocator.reuse(layout);
        if reused.is_null() {
            // SAFETY: as above.
            unsafe { allocator.alloc(layout) }
        } else {
            reused
        }
    } else {
        // SAFETY: the caller's block and layout (function contract).
        unsafe {
            allocator.realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}

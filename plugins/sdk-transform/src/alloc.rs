//! The allocator of transform components: per-size free lists in front of TLSF.
//!
//! A transform allocates and frees a dozen small strings and lists per record, in the same sizes
//! record after record. Recycling those blocks through a free list per size class is a pop and
//! a push; TLSF (constant-time, but with bitmap searches and block splitting and merging) serves
//! larger blocks and refills the lists. Freed small blocks stay in their list for the job's life
//! rather than returning to TLSF: a job is short-lived and its memory is capped anyway. The cost:
//! a transform that holds many small blocks of one size at once, frees them, then many of another
//! size, keeps both peaks (a per-record transform never does).
//!
//! A component runs on one thread (no `atomics` target feature), which both the lists and
//! `rlsf::GlobalTlsf` rely on.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Sizes up to this many bytes are served from the free lists.
const SMALL: usize = 256;
/// Size classes are multiples of this (and blocks are aligned to it).
const GRAIN: usize = 16;
const CLASSES: usize = SMALL / GRAIN;

/// The global allocator of a transform component.
pub struct ClassCache {
    tlsf: rlsf::GlobalTlsf,
    /// The head of each class's list of free blocks; each free block holds the next one's address.
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: a component instance is single-threaded (see the module comment).
unsafe impl Sync for ClassCache {}

impl ClassCache {
    /// An empty allocator.
    pub const fn new() -> ClassCache {
        ClassCache {
            tlsf: rlsf::GlobalTlsf::new(),
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }

    /// The class of a layout the lists serve, if they serve it.
    fn class(layout: Layout) -> Option<usize> {
        (layout.size() <= SMALL && layout.align() <= GRAIN).then(|| layout.size().max(1).div_ceil(GRAIN) - 1)
    }

    fn class_layout(class: usize) -> Layout {
        // SAFETY: a non-zero multiple of GRAIN, a power of two.
        unsafe { Layout::from_size_align_unchecked((class + 1) * GRAIN, GRAIN) }
    }
}

impl Default for ClassCache {
    fn default() -> Self {
        ClassCache::new()
    }
}

unsafe impl GlobalAlloc for ClassCache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = Self::class(layout) else {
            // SAFETY: forwarded as given.
            return unsafe { self.tlsf.alloc(layout) };
        };
        // SAFETY: single-threaded; list entries are free blocks of this class whose first word
        // holds the next entry.
        unsafe {
            let free = &mut *self.free.get();
            let head = free[c];
            if head.is_null() {
                return self.tlsf.alloc(Self::class_layout(c));
            }
            free[c] = *(head as *mut *mut u8);
            head
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::class(layout) {
            // SAFETY: `ptr` was allocated for this class (same layout ⇒ same class), at least
            // GRAIN bytes long and aligned, so it can hold the list link.
            Some(c) => unsafe {
                let free = &mut *self.free.get();
                *(ptr as *mut *mut u8) = free[c];
                free[c] = ptr;
            },
            // SAFETY: forwarded as given.
            None => unsafe { self.tlsf.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the new layout is valid per `GlobalAlloc::realloc`'s contract.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::class(layout), Self::class(new)) {
            (Some(a), Some(b)) if a == b => ptr,
            // SAFETY: forwarded as given; TLSF reallocates its own blocks in place when it can.
            (None, None) => unsafe { self.tlsf.realloc(ptr, layout, new_size) },
            _ => unsafe {
                let out = self.alloc(new);
                if !out.is_null() {
                    ptr::copy_nonoverlapping(ptr, out, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                out
            },
        }
    }
}

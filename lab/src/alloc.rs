//! The allocator's settings for the lab's numeric loops.
//!
//! Every training or sampling step allocates tensors of the same sizes as the step before and
//! frees them. glibc hands blocks over its mmap threshold (128 KiB at first) straight back to the
//! kernel, so the next step's tensors come from fresh pages: a page fault and the kernel's zeroing
//! of every page, about a tenth of a GRPO step under `perf` (`clear_page_erms`,
//! `exc_page_fault`). Raising the threshold and the trim threshold keeps freed blocks in the heap
//! for the next step. Only where memory comes from changes, never a number.

/// The largest mmap threshold glibc accepts on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_MAX: libc::c_int = 32 * 1024 * 1024;

/// Keeps freed memory (blocks up to 32 MiB, and the heap's free top) for reuse instead of
/// returning it to the kernel. Call once at the start of a process that trains or samples;
/// without glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before the process
    // starts its worker threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

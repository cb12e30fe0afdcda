//! Allocator settings. glibc hands every large block (a tensor buffer) back to the kernel when it is
//! freed and maps a fresh one for the next, whose pages the kernel must zero again: with tensors of
//! tens of MiB made and dropped at every layer, that was a third of a render decoder's training
//! time (system time 19 s of 48 s; 1.36 -> 1.88 images per second with the settings below). Raising
//! glibc's thresholds keeps freed memory in the process for reuse; peak memory is unchanged.
//! Blocks over glibc's 32 MiB ceiling were still mapped afresh each time: an ffhq1024 decode (tensors
//! of 512 MiB at 1024x1024) spent 15 % of its time zeroing new pages in the kernel. With mapping off,
//! those blocks come from the heap too: decode 12.8 -> 10.9 s, peak resident memory 2.5 -> 2.8 GiB
//! (freed blocks are reused in place, so the heap fragments a little).

/// Keeps every block on the heap (none mapped on its own), and freed heap memory in the process.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
    }
}

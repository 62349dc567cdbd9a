//! What the process asks of the allocator so that its steady memory is its
//! working set: one malloc arena, and the start-up's freed pages given back
//! once every secret has been tried. glibc only; a no-op elsewhere (musl's
//! allocator keeps no arenas and returns freed pages itself).

/// glibc's malloc gives each thread that contends for the heap an arena of
/// its own (up to 8 per core) and keeps their pages for good: with the
/// blocking pool's threads that was 300 KB of the steady RSS at 100 secrets.
/// Nothing here allocates hard enough from several threads at once to need
/// more than one. `MALLOC_ARENA_MAX`, if set, wins (glibc reads it before
/// `main`; this then does nothing). Call before any thread starts.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; called
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Gives the pages freed since start back to the system (the first sync's
/// answers, renders and buffers: ~100 KB at 100 secrets). Walks the heap:
/// run it off the actor thread, once.
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks; no pointer is
    // passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

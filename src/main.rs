//! The `permgate` binary: everything happens in [`permgate::cli`].

/// mimalloc 2 (the crate's `v2` feature): in measurements
/// (`examples/cache_memory.rs`) it stores a cached credential in 588 bytes,
/// against 651 with mimalloc 3 and about 750 with the system allocator, which
/// puts 100,000 cached credentials well under the 64 MiB budget; it also
/// costs the fewest instructions per proxied request of the three.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Memory freed by closed connections goes back to the system at once.
    // With mimalloc's default delay (10 ms) the purge waits for the next
    // allocation on the same worker thread, and a worker that turns idle
    // after a burst of connections keeps its peak RSS (README, "Memory").
    // `MIMALLOC_PURGE_DELAY` in the environment still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called before any other thread exists; the option is a
        // plain integer that mimalloc reads on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    permgate::cli::main()
}

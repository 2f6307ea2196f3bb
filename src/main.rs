//! The `permgate` binary: everything happens in [`permgate::cli`].

/// mimalloc 2 (the crate's `v2` feature): in measurements
/// (`examples/cache_memory.rs`) it stores a cached credential in 588 bytes,
/// against 651 with mimalloc 3 and about 750 with the system allocator, which
/// puts 100,000 cached credentials well under the 64 MiB budget; it also
/// costs the fewest instructions per proxied request of the three.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    permgate::server::set_worker_housekeeping(give_back_memory);
    permgate::cli::main()
}

/// Runs on each worker thread every few seconds: returns the pages the
/// thread's mimalloc heap holds empty to the system. Without it, memory
/// freed when a burst of connections closes stays resident while the worker
/// is idle, since mimalloc purges freed pages only on later allocations of
/// the same thread; purging at every free instead (`purge_delay` 0) costs
/// about 10% of requests/s in madvise calls (README, "Memory").
fn give_back_memory() {
    // SAFETY: mi_collect only walks and trims the calling thread's heap
    // and the segments abandoned by exited threads; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

//! The process-wide allocator of creditguard's programs: jemalloc, set up so that freed memory
//! is kept for reuse instead of handed back to the kernel.
//!
//! polars' column buffers, Arrow builders and Parquet pages are large blocks, allocated and freed
//! by the hundred for every batch a job runs and every file an ingest writes. Any allocator that
//! returns such blocks to the kernel makes the next one fault in fresh zeroed pages, and the
//! kernel's side of that was up to a third of the jobs' CPU:
//!
//! - glibc's malloc maps every block above its mmap threshold straight from the kernel and
//!   unmaps it on `free`. Raising the threshold (`mallopt`, what creditguard did before) helps
//!   only the main arena: polars' worker threads allocate from arenas whose heaps are at most
//!   64 MiB, so their larger blocks are still mapped and unmapped each time. At 100 M events the
//!   jobs spent 264 s of 822 CPU-seconds in the kernel that way.
//! - jemalloc with its defaults is worse: blocks above `oversize_threshold` (8 MiB) go to an
//!   arena that purges at once.
//!
//! [`JEMALLOC_CONF`] puts every block in the ordinary arenas (`oversize_threshold:0`), never
//! purges dirty or muzzy pages (`dirty_decay_ms:-1`, `muzzy_decay_ms:-1`), and uses one arena for
//! all threads (`narenas:1`; small allocations go through per-thread caches either way). With
//! the default of four arenas per core, pages freed by one of polars' threads sat idle while
//! another thread's arena asked the kernel for more: over 100 M events in batches of 3 days the
//! resident size crept from 9 to 13.1 GiB with eight arenas and stayed under 8.5 GiB with one, at
//! the same 335–350 s. All six jobs over 10 M events (`jobs_bench 10000000 30`, back to back on
//! one lake, eight arenas): glibc with `mallopt` 30.5 s (system CPU 6.5 s), jemalloc's defaults
//! 45.8 s (33.6 s), these options 24.0 s (4.2 s); with one arena 24.5–27.4 s and a peak of
//! 3.4–3.9 GiB against glibc's 4.7 GiB.
//!
//! The price is memory kept after a peak: the resident size stays at its high-water mark, which
//! for a batch job is the figure that matters anyway, and for the ingest service is bounded by
//! its roll policy. Batch jobs hand the kept pages back when they pass a limit
//! ([`release_retained`]). An operator can override any option at start with `_RJEM_MALLOC_CONF`
//! (jemalloc's `MALLOC_CONF` under the prefixed symbols this build uses), e.g.
//! `_RJEM_MALLOC_CONF=dirty_decay_ms:10000` to hand memory back after ten idle seconds.
//!
//! C libraries (librdkafka, zstd) keep glibc's malloc: the Rust allocator is replaced, not the
//! `malloc` symbol.

/// jemalloc's options for creditguard's programs (see the module documentation).
pub const JEMALLOC_CONF: &str =
    "narenas:1,oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1";

/// [`JEMALLOC_CONF`] as jemalloc reads it: a C string.
pub const JEMALLOC_CONF_C: &[u8; JEMALLOC_CONF.len() + 1] = &{
    let mut out = [0u8; JEMALLOC_CONF.len() + 1];
    let b = JEMALLOC_CONF.as_bytes();
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
};

#[cfg(all(unix, not(target_env = "musl")))]
#[doc(hidden)]
pub use tikv_jemallocator::Jemalloc;

/// Makes jemalloc with [`JEMALLOC_CONF`] the global allocator of the program it is written in.
/// Write it once at the top level of a binary's root module (`main.rs`, a bench, an example);
/// libraries and test binaries keep the system allocator.
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[cfg(all(unix, not(target_env = "musl")))]
        #[global_allocator]
        static GLOBAL_ALLOCATOR: $crate::memory::Jemalloc = $crate::memory::Jemalloc;

        /// Read by jemalloc at its first allocation (it declares `malloc_conf` weak; this
        /// definition wins).
        #[cfg(all(unix, not(target_env = "musl")))]
        #[allow(unsafe_code, non_upper_case_globals)]
        #[export_name = "_rjem_malloc_conf"]
        static malloc_conf: &[u8; $crate::memory::JEMALLOC_CONF.len() + 1] =
            $crate::memory::JEMALLOC_CONF_C;
    };
}

/// The resident memory of this process in bytes (`/proc/self/statm`); `None` where there is no
/// such file.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Hands every page jemalloc keeps for reuse back to the kernel (`arena.<all>.purge`). With
/// [`JEMALLOC_CONF`] nothing is returned otherwise, so a long run's resident size is its
/// high-water mark plus whatever fragmentation accumulated since. Returning them has a price:
/// the next allocations fault fresh pages in again, which is what the configuration avoids. All
/// six jobs over 100 M events in batches of 3 days: 350 s and a peak of 13.1 GiB never
/// returning, 466 s (236 s of it in the kernel) and 9.9 GiB returning after every batch. So the
/// jobs return them only when the resident size passes a limit (`[jobs]
/// release_memory_above_mib`). Returns whether jemalloc took the call (false when it is not
/// linked).
pub fn release_retained() -> bool {
    #[cfg(all(unix, not(target_env = "musl")))]
    #[allow(unsafe_code)]
    {
        // 4096 is MALLCTL_ARENAS_ALL: the call applies to every arena.
        // SAFETY: `arena.<i>.purge` reads and writes nothing; null pointers with length 0 are
        // how jemalloc's manual says to invoke it.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"arena.4096.purge".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        rc == 0
    }
    #[cfg(not(all(unix, not(target_env = "musl"))))]
    false
}

#[cfg(test)]
mod tests {
    use super::resident_bytes as resident;

    /// The unit tests of this crate run with [`use_jemalloc!`]: freed memory stays resident
    /// until [`super::release_retained`] hands it back.
    #[test]
    fn freed_memory_is_kept_until_released() {
        let Some(before) = resident() else {
            eprintln!("SKIP: no /proc/self/statm on this system");
            return;
        };
        let mb = 1 << 20;
        // Many blocks of a few sizes, as a batch's column buffers are.
        let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![1u8; (2 + i % 7) * mb]).collect();
        let total: usize = blocks.iter().map(Vec::len).sum();
        let peak = resident().unwrap();
        assert!(peak >= before + total as u64 * 9 / 10, "{before} -> {peak}");
        drop(blocks);
        let kept = resident().unwrap();
        assert!(
            kept >= peak - total as u64 / 10,
            "jemalloc kept the freed pages: {peak} -> {kept}"
        );
        assert!(super::release_retained());
        let released = resident().unwrap();
        assert!(
            released <= kept - total as u64 * 8 / 10,
            "purging returned them: {kept} -> {released}"
        );
    }

    #[test]
    fn the_c_string_is_the_conf_with_a_nul() {
        let c = super::JEMALLOC_CONF_C;
        assert_eq!(&c[..c.len() - 1], super::JEMALLOC_CONF.as_bytes());
        assert_eq!(c[c.len() - 1], 0);
        assert!(!super::JEMALLOC_CONF.contains('\0'));
    }
}

//! The process-wide allocator of creditguard's programs: jemalloc, set up so that freed memory
//! is kept for reuse instead of handed back to the kernel.
//!
//! polars' column buffers, Arrow builders and Parquet pages are large blocks, allocated and freed
//! by the hundred per batch; an allocator that returns them to the kernel makes every batch fault
//! in fresh pages, which cost up to a third of the jobs' CPU. [`JEMALLOC_CONF`] keeps them. Batch
//! jobs hand the kept pages back past a limit ([`release_retained`]); the long-running ingest
//! service lets them decay back instead ([`hand_back_freed_pages`]). An operator overrides any
//! option with `_RJEM_MALLOC_CONF`. C libraries (librdkafka, zstd) keep glibc's malloc.
//!
//! The rationale and the measurements behind it: `docs/design.md`, "The allocator".

#[cfg(test)]
use_jemalloc!();

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
        static GLOBAL_ALLOCATOR: $crate::Jemalloc = $crate::Jemalloc;

        /// Read by jemalloc at its first allocation (it declares `malloc_conf` weak; this
        /// definition wins).
        #[cfg(all(unix, not(target_env = "musl")))]
        #[allow(unsafe_code, non_upper_case_globals)]
        #[export_name = "_rjem_malloc_conf"]
        static malloc_conf: &[u8; $crate::JEMALLOC_CONF.len() + 1] = $crate::JEMALLOC_CONF_C;
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
/// the next allocations fault fresh pages in again, which is what the configuration avoids, so
/// the jobs call this only when the resident size passes a limit (`[jobs]
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

/// What the long-running ingest service does with freed pages instead of keeping them: dirty
/// pages go back to the kernel after this many milliseconds unused, and muzzy ones at once. A
/// service's resident size should follow its load, not stay at its high-water mark plus
/// fragmentation; the CPU cost is within noise (`docs/design.md`).
pub const SERVICE_DIRTY_DECAY_MS: isize = 1000;

/// Makes jemalloc hand freed pages back to the kernel after `dirty_decay_ms` of disuse (muzzy
/// pages at once), for every arena there is and every arena made later: the setting a
/// long-running service wants, where [`JEMALLOC_CONF`] suits batch jobs. Does nothing when the
/// operator chose a decay in `_RJEM_MALLOC_CONF` (their choice wins). Returns whether the
/// setting is now in force (false when jemalloc is not the allocator, or the operator's applies).
pub fn hand_back_freed_pages(dirty_decay_ms: isize) -> bool {
    if std::env::var("_RJEM_MALLOC_CONF").is_ok_and(|c| c.contains("decay_ms")) {
        return false;
    }
    #[cfg(all(unix, not(target_env = "musl")))]
    #[allow(unsafe_code)]
    {
        let set = |name: &str, value: isize| -> bool {
            let name = std::ffi::CString::new(name).expect("no NUL in a mallctl name");
            // `isize` is C's `ssize_t` on the platforms jemalloc is linked on.
            let mut v = value;
            // SAFETY: the `*_decay_ms` controls take an ssize_t; `v` lives across the call.
            let rc = unsafe {
                tikv_jemalloc_sys::mallctl(
                    name.as_ptr(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    (&mut v as *mut isize).cast(),
                    std::mem::size_of::<isize>(),
                )
            };
            rc == 0
        };
        let mut narenas: u32 = 0;
        let mut len = std::mem::size_of::<u32>();
        // SAFETY: `arenas.narenas` is an unsigned int, read into `narenas` of `len` bytes.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"arenas.narenas".as_ptr(),
                (&mut narenas as *mut u32).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            return false;
        }
        let mut ok =
            set("arenas.dirty_decay_ms", dirty_decay_ms) && set("arenas.muzzy_decay_ms", 0);
        for i in 0..narenas {
            // Arenas that were never initialised refuse (EFAULT); they take the defaults above
            // when they are made.
            let _ = set(&format!("arena.{i}.muzzy_decay_ms"), 0);
            ok &= set(&format!("arena.{i}.dirty_decay_ms"), dirty_decay_ms) || i > 0;
        }
        ok
    }
    #[cfg(not(all(unix, not(target_env = "musl"))))]
    {
        let _ = dirty_decay_ms;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::resident_bytes as resident;

    /// The unit tests of this crate run with [`use_jemalloc!`]: freed memory stays resident
    /// until [`super::release_retained`] hands it back.
    #[test]
    fn freed_memory_is_kept_until_released_or_handed_back_by_decay() {
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

        // The service's setting, in the same test: it changes the whole process's allocator,
        // and tests of one binary run side by side. With a decay of 0 ms, freed pages go back
        // at once.
        assert!(super::hand_back_freed_pages(0));
        let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![1u8; (2 + i % 7) * mb]).collect();
        let peak = resident().unwrap();
        drop(blocks);
        let after = resident().unwrap();
        assert!(
            after <= peak - total as u64 * 8 / 10,
            "freed pages were handed back without a purge: {peak} -> {after}"
        );
        assert!(super::hand_back_freed_pages(-1), "back to keeping them");
    }

    #[test]
    fn the_c_string_is_the_conf_with_a_nul() {
        let c = super::JEMALLOC_CONF_C;
        assert_eq!(&c[..c.len() - 1], super::JEMALLOC_CONF.as_bytes());
        assert_eq!(c[c.len() - 1], 0);
        assert!(!super::JEMALLOC_CONF.contains('\0'));
    }
}

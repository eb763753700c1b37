//! Process-wide memory settings for the lake's writers and readers.

/// Keeps freed blocks (up to 1 GiB each, and up to 1 GiB of free heap) in glibc's heap for
/// reuse, instead of returning each to the system and faulting in fresh zeroed pages for the next.
///
/// glibc maps every block above its mmap threshold (128 KiB, raised only as far as the largest
/// block freed so far, at most 32 MiB) straight from the kernel and unmaps it on `free`. polars'
/// column buffers, Arrow builders and Parquet pages are such blocks, allocated and freed by the
/// hundred for every batch a job runs and every file an ingest writes, so each paid its page
/// faults anew. All six jobs over 10 M events (`jobs_bench 10000000 30`, back to back on the
/// same lake): 38.7 s with 25.6 s of system CPU under glibc's defaults, 29.1 s with 10.6 s with
/// these settings. File ingest (`benches/ingest.rs`) is unchanged within noise (2.03–2.29 against
/// 2.06 µs per event). The price is memory kept after a peak: a process holds on to up to 1 GiB
/// it no longer uses (the Kafka service's peak RSS in `benches/kafka_ingest.rs` rose by about
/// 60 MiB).
///
/// Call once, first thing in `main`. Leaves everything alone when the operator set malloc
/// tunables of their own (`GLIBC_TUNABLES=glibc.malloc.…`), and off glibc. Returns whether it
/// changed the settings.
pub fn tune_allocator() -> bool {
    if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    {
        // SAFETY: `mallopt` only sets malloc parameters; any thread may call it at any time.
        // It returns 1 when it took the value (glibc 2.36 takes both).
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
        };
        set
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_takes_the_settings() {
        if std::env::var_os("GLIBC_TUNABLES").is_none() {
            assert_eq!(
                super::tune_allocator(),
                cfg!(all(target_os = "linux", target_env = "gnu"))
            );
        }
    }
}

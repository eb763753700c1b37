//! Sharded runs: one process per shard of the users, then one merge.
//!
//! A user belongs to shard `xxh3_64(user_id) mod N`: the 64-bit XXH3 hash (seed 0) of the UTF-8
//! bytes of `user_id` as the lake stores it (the pseudonym when `[privacy]` is on). The function
//! is fixed by its specification, so a user stays in the same shard across versions and machines.
//!
//! A shard ([`run_shard`](crate::run_shard)) reads only its users' events and runs the detectors
//! that judge each user alone (`watch_time`, `multi_login`, `course_switching`, `quiz_speed`,
//! `automation`). What the detectors that compare users need ([`CROSS_USER`]: the sign-ins and
//! device uses of `shared_device` and `proxy_learning`, the claims and engaged time of
//! `credit_burst`'s peer baselines) it hands on, already de-duplicated and with the clock-skew
//! bound applied. Everything goes to a staging table of the lake, one partition per shard and
//! batch of days; the live tables are untouched. The merge
//! ([`merge_shards`](crate::merge_shards)) reads the N shards' staging, runs the cross-user
//! detectors over all users, and replaces each day's live partitions in one step, exactly as a
//! single-process run would (same rows, same ids, same run id).

use std::fmt;
use std::str::FromStr;

use creditguard_lake::Lake;

/// The detectors that compare users with each other: computed by the merge, from inputs every
/// shard stages.
pub const CROSS_USER: [&str; 3] = ["credit_burst", "shared_device", "proxy_learning"];

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Shard `index` of `count`; an error naming both when `index` ≥ `count` or `count` is 0.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the number of shards must be at least 1".to_string());
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard of a user id among `count` (see the module docs).
    pub fn of_user(user_id: &str, count: u32) -> u32 {
        (xxhash_rust::xxh3::xxh3_64(user_id.as_bytes()) % u64::from(count)) as u32
    }

    /// This shard holds `user_id`.
    pub fn holds(&self, user_id: &str) -> bool {
        Self::of_user(user_id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N`, as in `--shard 2/7`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}`: expected K/N, the shard K (0 to N-1) of N shards, as in 0/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n).map_err(|e| format!("`{s}`: {e}"))
    }
}

/// The lake table under which the shards of one sharded run stage their output:
/// `_shards/<run>/<K>-of-<N>`, one partition per batch (named by the batch's first day).
pub fn staging_table(run: &str, shard: Shard) -> String {
    format!("_shards/{run}/{}-of-{}", shard.index, shard.count)
}

/// Removes a sharded run's staging (after its merge): every partition of every shard's staging
/// table, on the file system or in the bucket of a lake on object storage, then what is left of
/// the run's local directory.
pub fn remove_staging(lake: &Lake, run: &str, count: u32) -> crate::Result<()> {
    for index in 0..count {
        let table = staging_table(run, Shard { index, count });
        for day in lake.days(&table)? {
            lake.remove_partition(&table, day)?;
        }
    }
    let dir = lake.table_dir(&format!("_shards/{run}"));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::Io {
            path: dir.display().to_string(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_are_named() {
        assert_eq!("2/7".parse::<Shard>(), Ok(Shard { index: 2, count: 7 }));
        for (input, says) in [
            ("3/2", "`3/2`: shard 3 of 2 does not exist"),
            ("2/2", "`2/2`: shard 2 of 2 does not exist"),
            ("0/0", "`0/0`: the number of shards must be at least 1"),
            ("x", "`x`: expected K/N"),
            ("1/x", "`1/x`: expected K/N"),
            ("-1/2", "`-1/2`: expected K/N"),
        ] {
            let err = input.parse::<Shard>().unwrap_err();
            assert!(err.starts_with(says), "{input}: {err}");
        }
    }

    /// The assignment is part of the lake's interface (a scheduler may route by it, and a
    /// learner must not move between shards with a new version): XXH3-64, seed 0, pinned.
    #[test]
    fn the_user_hash_is_xxh3_of_the_id_bytes() {
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b"u1"), 0x9dc0_2546_854d_5df1);
        let shards: Vec<u32> = ["u1", "u2", "u3", "u4", "u5"]
            .iter()
            .map(|u| Shard::of_user(u, 7))
            .collect();
        assert_eq!(shards, [2, 6, 2, 1, 5]);
        assert!(Shard::new(0, 1).unwrap().holds("anyone"));
        assert!(Shard::new(2, 7).unwrap().holds("u1"));
        assert!(!Shard::new(1, 7).unwrap().holds("u1"));
    }
}

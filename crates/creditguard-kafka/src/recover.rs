//! Replaying exactly the ranges a crashed run wrote.
//!
//! Event files are named `part-<topic>-<partition>-<first offset>-<last offset>.parquet`. When a
//! process dies after a range's files are durable but before its offsets are committed, the next
//! owner of the partition reads those offsets again. Rolling by age (or a different config)
//! would cut the replay into different ranges, and the rows already on disk under the old names
//! would be doubled. So on the first message after an assignment the consumer lists the files
//! already in the lake for that partition at or after its resume offset and *replays their
//! boundaries*: while inside them, a range ends exactly where a file's range ended, and the
//! rewrite replaces the same files (with the same rows) instead of adding new ones. It also
//! writes a day's file that the crash prevented (a range spans several event days).

use creditguard_lake::Lake;

use crate::Result;

/// The file name of a range.
pub fn file_name(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!("part-{topic}-{partition}-{first}-{last}.parquet")
}

/// The `(first, last)` offset ranges of the event files of `topic`/`partition` in the lake,
/// sorted, each once (a range has one file per event day).
pub fn existing_ranges(lake: &Lake, topic: &str, partition: i32) -> Result<Vec<(i64, i64)>> {
    let prefix = format!("part-{topic}-{partition}-");
    let mut ranges = Vec::new();
    for day in lake.days("events")? {
        // Names only: on object storage the files are not fetched.
        for name in lake.partition_file_names("events", day)? {
            let Some(rest) = name
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".parquet"))
            else {
                continue;
            };
            // Exactly two numbers: `t-1` partition 5 never matches topic `t` partition 1.
            let Some((a, b)) = rest.split_once('-') else {
                continue;
            };
            if let (Ok(first), Ok(last)) = (a.parse::<i64>(), b.parse::<i64>()) {
                ranges.push((first, last));
            }
        }
    }
    ranges.sort_unstable();
    ranges.dedup();
    Ok(ranges)
}

/// Range boundaries to reproduce while replaying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Offsets after which a range must end, sorted: each file's `last` and `first - 1`.
    bounds: Vec<i64>,
    /// The last offset covered by an existing file.
    end: i64,
}

impl Plan {
    /// The plan for a partition resuming at offset `from`, given the ranges in the lake.
    pub fn new(ranges: &[(i64, i64)], from: i64) -> Plan {
        let mut bounds = Vec::new();
        let mut end = -1;
        let mut prev_last = i64::MIN;
        for &(first, last) in ranges.iter().filter(|r| r.1 >= from) {
            if first <= prev_last {
                tracing::warn!(first, last, prev_last, "Overlapping event files in the lake (a zombie writer?); rows in the overlap are doubled.");
            }
            prev_last = prev_last.max(last);
            bounds.push(first - 1);
            bounds.push(last);
            end = end.max(last);
        }
        bounds.sort_unstable();
        bounds.dedup();
        Plan { bounds, end }
    }

    /// Whether offset `o` is inside the replayed region (other roll triggers are off there).
    pub fn active(&self, o: i64) -> bool {
        o <= self.end
    }

    /// Whether a range must end at an offset in `lo..hi`: before pushing `o` into a range whose
    /// last offset is `last`, roll if `boundary_in(last, o)`; after pushing `o`, roll if
    /// `boundary_in(o, o + 1)`.
    pub fn boundary_in(&self, lo: i64, hi: i64) -> bool {
        let i = self.bounds.partition_point(|b| *b < lo);
        self.bounds.get(i).is_some_and(|b| *b < hi)
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts offsets into ranges the way the consumer does: plan boundaries inside the replayed
    /// region, `every` offsets outside it.
    fn cut(plan: &Plan, offsets: &[i64], every: usize) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut cur: Option<(i64, i64)> = None;
        let mut n = 0;
        for &o in offsets {
            if let Some((f, l)) = cur {
                if plan.boundary_in(l, o) {
                    out.push((f, l));
                    cur = None;
                    n = 0;
                }
            }
            cur = Some((cur.map_or(o, |c| c.0), o));
            n += 1;
            if plan.boundary_in(o, o + 1) || (!plan.active(o) && n >= every) {
                out.push(cur.take().unwrap());
                n = 0;
            }
        }
        out.extend(cur);
        out
    }

    #[test]
    fn replay_reproduces_the_files_then_rolls_freely() {
        // A crashed run wrote 10..=24 and 25..=31; committed offset was 10.
        let plan = Plan::new(&[(0, 9), (10, 24), (25, 31)], 10);
        let offsets: Vec<i64> = (10..50).collect();
        assert_eq!(
            cut(&plan, &offsets, 7),
            vec![(10, 24), (25, 31), (32, 38), (39, 45), (46, 49)]
        );
    }

    #[test]
    fn gaps_and_skipped_offsets_keep_the_boundaries() {
        // 0..=4 were all dead letters (no file); a file covers 5..=9; offsets 7 and 8 vanished
        // (compaction) in the replay.
        let plan = Plan::new(&[(5, 9)], 0);
        assert_eq!(
            cut(&plan, &[0, 1, 2, 3, 4, 5, 6, 9, 10, 11], 100),
            vec![(0, 4), (5, 9), (10, 11)]
        );
        assert_eq!(
            cut(&plan, &[0, 1, 6, 10], 100),
            vec![(0, 1), (6, 6), (10, 10)]
        );
        assert!(Plan::new(&[(5, 9)], 10).is_empty());
    }

    #[test]
    fn file_names_round_trip_and_do_not_mix_topics() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for (topic, p, f, l, day) in [
            ("t", 1, 0, 9, 20_000),
            ("t", 1, 10, 19, 20_001),
            ("t", 1, 10, 19, 20_000),
            ("t-1", 5, 9, 12, 20_000),
            ("t", 2, 0, 3, 20_000),
        ] {
            let d = lake.partition_dir("events", day);
            lake.write_file_atomic(&d, &file_name(topic, p, f, l), |_| Ok(()))
                .unwrap();
        }
        assert_eq!(
            existing_ranges(&lake, "t", 1).unwrap(),
            vec![(0, 9), (10, 19)]
        );
        assert_eq!(existing_ranges(&lake, "t-1", 5).unwrap(), vec![(9, 12)]);
        assert_eq!(
            file_name("learning.telemetry", 0, 5, 9),
            "part-learning.telemetry-0-5-9.parquet"
        );
    }
}

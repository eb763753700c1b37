//! Reading the lake's `events` table for a range of days, and the expressions every detector
//! shares.
//!
//! Detectors see the `events` columns (see `creditguard_contract::events_schema`) plus `t`: `ts`
//! as Int64 UTC microseconds, which keeps the window arithmetic in plain integers.

use creditguard_contract::time::event_time_us;
use creditguard_lake::Lake;
use polars::prelude::*;

use crate::shard::Shard;
use crate::Result;

/// Microseconds in a day.
pub use creditguard_contract::time::DAY_US;

/// The columns detectors read (everything but `received_at`, `platform`, `src`, `src_pos` and
/// `prompt_id`: attention checks are named by their `event_id` in evidence).
pub const COLUMNS: [&str; 32] = [
    "event_id",
    "event_type",
    "ts",
    "user_id",
    "org_unit",
    "session_id",
    "device_id",
    "ip",
    "geo_lat",
    "geo_lon",
    "course_id",
    "lesson_id",
    "position_s",
    "duration_s",
    "playing",
    "visible",
    "muted",
    "rate",
    "seek_from_s",
    "seek_to_s",
    "quiz_id",
    "score",
    "max_score",
    "questions",
    "elapsed_s",
    "credits",
    "category",
    "method",
    "answered",
    "response_s",
    "correct",
    "input_events",
];

/// The polars schema of [`scan_columns`] (`ts` and `received_at` as UTC microseconds), for
/// empty inputs.
pub fn schema() -> Schema {
    let mut s = Schema::default();
    for name in COLUMNS {
        let dt = match name {
            "ts" => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
            "geo_lat" | "geo_lon" | "position_s" | "duration_s" | "rate" | "seek_from_s"
            | "seek_to_s" | "score" | "max_score" | "elapsed_s" | "credits" | "response_s" => {
                DataType::Float64
            }
            "playing" | "visible" | "muted" | "answered" | "correct" => DataType::Boolean,
            "questions" | "input_events" => DataType::Int64,
            _ => DataType::String,
        };
        s.with_column(name.into(), dt);
    }
    // Read by `prepare` (the clock-skew bound) and dropped there.
    s.with_column(
        "received_at".into(),
        DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
    );
    s
}

/// The raw `events` rows of the days `from_day..=to_day` (no de-duplication), as a lazy scan of
/// the lake's Parquet files; an empty frame with the right columns when there are none.
pub fn scan_days(lake: &Lake, from_day: i64, to_day: i64) -> Result<LazyFrame> {
    let files = lake.files("events", from_day, to_day)?;
    if files.is_empty() {
        return Ok(DataFrame::empty_with_schema(&schema()).lazy());
    }
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|p| PlRefPath::new(p.to_string_lossy().as_ref()))
        .collect();
    // Files written before telemetry-v1 gained attention checks and input counts lack those
    // columns: with the table's full schema they read as nulls.
    let args = ScanArgsParquet {
        schema: Some(Arc::new(file_schema())),
        allow_missing_columns: true,
        ..Default::default()
    };
    let lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?;
    Ok(lf.select(scan_columns()))
}

/// The polars schema of the lake's `events` files (`creditguard_contract::events_schema`).
pub fn file_schema() -> Schema {
    let arrow = creditguard_contract::events_schema();
    let mut s = Schema::default();
    let known = schema();
    for field in arrow.fields() {
        let name = field.name().as_str();
        let dt = match (name, known.get(name)) {
            (_, Some(dt)) => dt.clone(),
            ("src_pos", None) => DataType::Int64,
            _ => DataType::String,
        };
        s.with_column(name.into(), dt);
    }
    s
}

/// What [`prepare`] reads: [`COLUMNS`] and `received_at` (for the clock-skew bound).
pub fn scan_columns() -> Vec<Expr> {
    COLUMNS
        .iter()
        .chain(std::iter::once(&"received_at"))
        .map(|c| col(*c))
        .collect()
}

pub use creditguard_contract::time::SKEW_TOLERANCE_US;

/// The events a job for days `from_day..=to_day` needs: those of `from_day-1..=to_day+1` (one
/// day of context each side, for intervals and sessions that cross midnight), de-duplicated by
/// `event_id` (producers deliver twice), with `t` = `ts` in microseconds, ordered by `user_id`,
/// `ts`, `event_id` (see [`prepare`]). Detectors still order the rows by their own keys and `t`
/// (ties broken by `event_id`); on this input those sorts are cheap.
pub fn scan_events(lake: &Lake, from_day: i64, to_day: i64) -> Result<LazyFrame> {
    scan_events_of(lake, from_day, to_day, None)
}

/// [`scan_events`] for the users of one shard (all users with `None`). The filter runs before
/// de-duplication and the clock-skew bound, which look at one user's events only, so a shard's
/// rows are exactly its users' rows of the whole scan, in the same order.
pub fn scan_events_of(
    lake: &Lake,
    from_day: i64,
    to_day: i64,
    shard: Option<Shard>,
) -> Result<LazyFrame> {
    let mut lf = scan_days(lake, from_day - 1, to_day + 1)?;
    if let Some(shard) = shard {
        // The shard's user ids among those present (one column read), as a set the scan
        // filters on.
        let present = lf
            .clone()
            .select([col("user_id")])
            .unique(None, UniqueKeepStrategy::Any)
            .collect()?;
        let ids: Vec<&str> = present
            .column("user_id")?
            .str()?
            .iter()
            .flatten()
            .filter(|u| shard.holds(u))
            .collect();
        lf = lf.filter(col("user_id").is_in(
            lit(Series::new("shard_users".into(), ids)).implode(false),
            false,
        ));
    }
    Ok(prepare(lf)?.filter(
        col("t")
            .gt_eq(lit((from_day - 1) * DAY_US))
            .and(col("t").lt(lit((to_day + 2) * DAY_US))),
    ))
}

/// De-duplicates raw event rows by `event_id` and adds `t`, the event time in UTC microseconds
/// with client clock skew bounded by `received_at` (then dropped). Which copy of a duplicate is
/// kept does not matter: copies of one `event_id` are the same event.
///
/// The rows come out ordered by `user_id`, `ts` (the time as sent), `event_id`: the rows are
/// sorted first, and since copies of an event are the same event they end up next to each other,
/// so de-duplication is a comparison with the previous row instead of a hash table over every
/// `event_id`. The order is also what the detectors want: they sort by user and time, and
/// polars' sorts and group-bys are several times faster on input that is already (nearly) in
/// that order than on the scattered order a hash de-duplication leaves (measured on 2.7 M events:
/// a sort by user, session, time 0.5 s against 5.8 s).
///
/// The skew bound is `creditguard_contract::time::event_time_us` applied per session (see
/// [`skew_bounded_t`]): the scorer's readers apply the same function, so flags and the activity
/// they are linked to are on one clock.
pub fn prepare(lf: LazyFrame) -> Result<LazyFrame> {
    let inputs = [
        col("user_id"),
        col("session_id"),
        col("ts").cast(DataType::Int64),
        col("received_at").cast(DataType::Int64),
    ];
    // Group-wise, so the function sees whole columns: a session's rows may be anywhere in its
    // learner's run of rows.
    let t = apply_multiple(
        |c: &mut [Column]| skew_bounded_t(c),
        inputs,
        |_: &Schema, _: &[Field]| Ok(Field::new("t".into(), DataType::Int64)),
        false,
    );
    Ok(lf
        .sort(["user_id", "ts", "event_id"], sort_opts())
        .filter(col("event_id").neq_missing(col("event_id").shift(lit(1))))
        .with_column(t.alias("t"))
        .drop(cols(["received_at"])))
}

/// `t` of each row of `user_id`, `session_id`, `ts`, `received_at` (microseconds), whose rows are
/// ordered by `user_id` (each learner's rows adjacent): `ts`, moved back by the session's
/// smallest lead `received_at − ts` when that is below −[`SKEW_TOLERANCE_US`] (the client's
/// clock runs ahead). A row without a session is its own session; a row without `received_at`
/// has no lead.
///
/// The time itself is `creditguard_contract::time::event_time_us`. Only sessions with a row
/// that far ahead change, and few do, so this is one pass comparing
/// each row's learner with the previous row's, plus a short list per learner whose clock ran
/// ahead: a window over (learner, session) hashed every row of the batch, 16 % of the load.
pub fn skew_bounded_t(cols: &mut [Column]) -> PolarsResult<Column> {
    let [user, session, ts, received] = cols else {
        polars_bail!(ComputeError: "skew_bounded_t takes user_id, session_id, ts, received_at");
    };
    let (user, session) = (user.str()?, session.str()?);
    let (ts, received) = (ts.i64()?, received.i64()?);
    let mut out: Vec<Option<i64>> = Vec::with_capacity(ts.len());
    // The current learner's rows: (session, ts, lead).
    type Row<'a> = (Option<&'a str>, Option<i64>, Option<i64>);
    let mut run: Vec<Row<'_>> = Vec::new();
    // Sessions of the current learner with a row ahead, and their smallest lead.
    let mut ahead: Vec<(&str, i64)> = Vec::new();
    fn flush<'a>(
        run: &mut Vec<Row<'a>>,
        ahead: &mut Vec<(&'a str, i64)>,
        out: &mut Vec<Option<i64>>,
    ) {
        ahead.clear();
        for &(s, _, lead) in run.iter() {
            if let (Some(s), Some(l)) = (s, lead) {
                if l < -SKEW_TOLERANCE_US {
                    match ahead.iter_mut().find(|(k, _)| *k == s) {
                        Some((_, min)) => *min = (*min).min(l),
                        None => ahead.push((s, l)),
                    }
                }
            }
        }
        out.extend(run.drain(..).map(|(s, t, lead)| {
            // The session's smallest lead when it ran ahead (the others move nothing).
            let lead = match s {
                None => lead,
                Some(s) => ahead.iter().find(|(k, _)| *k == s).map(|(_, l)| *l),
            };
            t.map(|t| event_time_us(t, lead))
        }));
    }
    let mut current: Option<Option<&str>> = None;
    let rows = user
        .iter()
        .zip(session.iter())
        .zip(ts.iter().zip(received.iter()));
    for ((u, s), (t, r)) in rows {
        if current != Some(u) {
            flush(&mut run, &mut ahead, &mut out);
            current = Some(u);
        }
        let lead = match (t, r) {
            (Some(t), Some(r)) => Some(r - t),
            _ => None,
        };
        run.push((s, t, lead));
    }
    flush(&mut run, &mut ahead, &mut out);
    Ok(Int64Chunked::from_iter_options("t".into(), out.into_iter()).into_column())
}

/// [`scan_events`], collected, ordered by `t` then `event_id`.
pub fn load_events(lake: &Lake, from_day: i64, to_day: i64) -> Result<DataFrame> {
    Ok(scan_events(lake, from_day, to_day)?
        .sort(
            ["t", "event_id"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

/// `event_type` is one of `types`: one comparison for one type, one set lookup per row for
/// several (cheaper than a comparison per type over a whole batch: `shared_device`'s filter of
/// 2.5 M events went from ≈ 25 to ≈ 20 ms).
pub fn type_in(types: &[&str]) -> Expr {
    match types {
        [] => lit(false),
        [t] => col("event_type").eq(lit(*t)),
        _ => col("event_type").is_in(
            lit(Series::new("types".into(), types)).implode(false),
            false,
        ),
    }
}

/// True where the row continues the run of the previous row: every key equal to the previous
/// row's (nulls equal). The frame must be sorted by `keys` first.
pub fn same_as_prev(keys: &[&str]) -> Expr {
    keys.iter()
        .map(|k| col(*k).eq_missing(col(*k).shift(lit(1))))
        .reduce(|a, b| a.and(b))
        .expect("at least one key")
        .fill_null(lit(false))
}

/// True where the next row continues the same run (see [`same_as_prev`]).
pub fn same_as_next(keys: &[&str]) -> Expr {
    keys.iter()
        .map(|k| col(*k).eq_missing(col(*k).shift(lit(-1))))
        .reduce(|a, b| a.and(b))
        .expect("at least one key")
        .fill_null(lit(false))
}

/// Day (days since 1970-01-01, UTC) of a microsecond timestamp expression.
pub fn day_of(t: Expr) -> Expr {
    t.floor_div(lit(DAY_US))
}

/// Seconds between two microsecond expressions, as f64.
pub fn secs(us: Expr) -> Expr {
    us.cast(DataType::Float64) / lit(1e6)
}

/// `df` sorted by `keys` as [`sort_opts`] sorts it, without sorting when its rows are already in
/// that order. Frames taken from the events keep their order, `user_id`, `ts`, `event_id`,
/// which is `user_id`, `t`, `event_id` unless a skewed clock moved a session: one pass of
/// comparisons then saves encoding the keys of every row and gathering every column.
pub fn sorted_by(df: DataFrame, keys: &[&str]) -> Result<DataFrame> {
    if in_order(&df, keys)? {
        return Ok(df);
    }
    Ok(df.sort(keys.iter().copied(), sort_opts())?)
}

/// Whether every row of `df` is at or after the previous one by `keys` (lexicographically), with
/// no null key (nulls are left to the sort).
fn in_order(df: &DataFrame, keys: &[&str]) -> Result<bool> {
    if df.height() < 2 {
        return Ok(true);
    }
    let mut ordered: Option<Expr> = None;
    for k in keys.iter().rev() {
        let (c, p) = (col(*k), col(*k).shift(lit(1)));
        ordered = Some(match ordered {
            None => c.gt_eq(p),
            Some(rest) => c.clone().gt(p.clone()).or(c.eq(p).and(rest)),
        });
    }
    let no_nulls = keys
        .iter()
        .map(|k| col(*k).null_count().eq(lit(0u32)))
        .reduce(|a, b| a.and(b))
        .expect("at least one key");
    // Row 0 has no previous row (null): in order.
    let ordered = ordered
        .expect("at least one key")
        .fill_null(lit(true))
        .all(false);
    let answer = df
        .clone()
        .lazy()
        .select([no_nulls.and(ordered).alias("in_order")])
        .collect()?;
    Ok(answer.column("in_order")?.bool()?.get(0) == Some(true))
}

/// Ascending sort with row order kept among ties (deterministic output).
pub fn sort_opts() -> SortMultipleOptions {
    SortMultipleOptions::default().with_maintain_order(true)
}

/// Overlaps of intervals `start..end` (µs) of one `key` (a user), found in one pass instead of a
/// self-join: in start order, each interval is compared with the earlier interval of the same key
/// that ends last (the only one that can overlap it the most). Adds `o_end` (that interval's end)
/// and, for each `(column, alias)` of `carry` (string columns), the column's value on that
/// interval; keeps the rows
/// that overlap it (`overlap_us` = min(`end`, `o_end`) − `start` > 0).
///
/// `intervals` must be sorted by `key`, then `start` (ties in any fixed order). The cumulative
/// maximum runs over the sorted `key` column, so the windows are contiguous slices: cheap even
/// for millions of rows. `multi_login` (concurrent sessions) and `course_switching` (parallel
/// playback) both use it.
pub fn overlap_sweep(
    intervals: LazyFrame,
    key: &str,
    carry: &[(&str, &str)],
) -> PolarsResult<LazyFrame> {
    let by = [col(key)];
    let mut with = vec![col("end")
        .cum_max(false)
        .shift(lit(1))
        .over(by.clone())?
        .alias("o_end")];
    for (c, alias) in carry {
        // The value on the row that set the running maximum, carried forward, one row late.
        with.push(
            when(col("_is_max"))
                .then(col(*c))
                .otherwise(lit(NULL).cast(DataType::String))
                .fill_null_with_strategy(FillNullStrategy::Forward(None))
                .shift(lit(1))
                .over(by.clone())?
                .alias(*alias),
        );
    }
    Ok(intervals
        .with_column(
            col("end")
                .eq(col("end").cum_max(false).over(by.clone())?)
                .alias("_is_max"),
        )
        .with_columns(with)
        .with_column(
            (when(col("end").lt(col("o_end")))
                .then(col("end"))
                .otherwise(col("o_end"))
                - col("start"))
            .alias("overlap_us"),
        )
        .filter(col("overlap_us").gt(lit(0i64)))
        .drop(cols(["_is_max"])))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::RecordBatch;
    use arrow_schema::Schema as ArrowSchema;
    use creditguard_contract::{events_schema, parse_event, EventBatchBuilder};

    use super::*;

    /// `prepare`'s `t` is what the window over (learner, session) it replaced gives: the smallest
    /// lead of a session whose clock runs ahead moves all its rows, a row without a session moves
    /// alone, a row without `received_at` has no lead, and other learners' sessions of the same
    /// name are theirs.
    #[test]
    fn skew_bound_matches_the_window_over_learner_and_session() {
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let (mut ids, mut users, mut sessions, mut ts, mut received) =
            (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..4_000 {
            let t = next(10_000) as i64 * 1_000_000;
            // Leads from 30 s ahead to 30 s behind; some rows within the tolerance.
            let lead = next(60_001) as i64 * 1_000 - 30_000_000;
            ids.push(format!("e{i}"));
            users.push(format!("u{}", next(40)));
            sessions.push(match next(10) {
                0 => None,
                k => Some(format!("s{}", k % 4)),
            });
            ts.push(t);
            received.push((next(20) != 0).then_some(t + lead));
        }
        let raw = df!(
            "event_id" => ids, "user_id" => users, "session_id" => sessions,
            "ts" => ts, "received_at" => received
        )
        .unwrap();
        let got = prepare(raw.clone().lazy()).unwrap().collect().unwrap();
        let ts = col("ts").cast(DataType::Int64);
        let lead = col("received_at").cast(DataType::Int64) - ts.clone();
        let ahead = when(col("session_id").is_null())
            .then(lead.clone())
            .otherwise(
                lead.min()
                    .over([col("user_id"), col("session_id")])
                    .unwrap(),
            );
        let want = raw
            .lazy()
            .sort(["user_id", "ts", "event_id"], sort_opts())
            .with_column(
                when(ahead.clone().lt(lit(-SKEW_TOLERANCE_US)))
                    .then(ts.clone() + ahead)
                    .otherwise(ts)
                    .alias("t"),
            )
            .collect()
            .unwrap();
        let moved = got
            .column("t")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .zip(got.column("ts").unwrap().i64().unwrap().iter())
            .filter(|(t, ts)| t != ts)
            .count();
        assert!(moved > 1_000, "{moved} rows moved: the case tests little");
        assert_eq!(
            got.column("event_id").unwrap(),
            want.column("event_id").unwrap()
        );
        assert_eq!(got.column("t").unwrap(), want.column("t").unwrap());
    }

    /// `sorted_by` gives what the sort gives: the same rows untouched when they are in order,
    /// sorted when a later key, a tie broken by the last key, or a null puts them out of order.
    #[test]
    fn sorted_by_skips_only_frames_already_in_order() {
        let frame = |users: &[Option<&str>], ts: &[i64], ids: &[&str]| {
            df!("user_id" => users, "t" => ts, "event_id" => ids).unwrap()
        };
        let keys = ["user_id", "t", "event_id"];
        let by_sort = |df: &DataFrame| df.sort(keys, sort_opts()).unwrap();
        let cases = [
            // In order, ties in `t` broken by `event_id`.
            frame(
                &[Some("a"), Some("a"), Some("a"), Some("b")],
                &[1, 2, 2, 0],
                &["x", "e1", "e2", "y"],
            ),
            // A session's clock moved one event earlier.
            frame(
                &[Some("a"), Some("a"), Some("b")],
                &[5, 3, 1],
                &["x", "y", "z"],
            ),
            // The tie in `t` out of order by `event_id`.
            frame(&[Some("a"), Some("a")], &[2, 2], &["e2", "e1"]),
            // A later user first.
            frame(&[Some("b"), Some("a")], &[1, 2], &["x", "y"]),
            // A null user (a sort puts nulls first).
            frame(&[Some("a"), None], &[1, 2], &["x", "y"]),
            frame(&[Some("a")], &[1], &["x"]),
        ];
        for (i, df) in cases.iter().enumerate() {
            let got = sorted_by(df.clone(), &keys).unwrap();
            assert!(
                got.equals_missing(&by_sort(df)),
                "case {i}: {got} against {}",
                by_sort(df)
            );
        }
        assert!(in_order(&cases[0], &keys).unwrap());
        for (i, df) in cases[1..5].iter().enumerate() {
            assert!(
                !in_order(df, &keys).unwrap(),
                "case {} is out of order",
                i + 1
            );
        }
    }

    fn batch(line: &str) -> RecordBatch {
        let mut b = EventBatchBuilder::new();
        b.push(&parse_event(line.as_bytes()).unwrap(), "test", 0);
        b.finish()
    }

    /// A file written before telemetry-v1 gained attention checks and input counts (the columns
    /// after `src_pos`) and one written after both read, the old one with nulls.
    #[test]
    fn files_without_the_added_columns_read_beside_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let day = 20_514;
        let old = batch(
            r#"{"event_id":"h1","type":"heartbeat","ts":"2026-03-02T09:15:04Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":1,"playing":true,"visible":true}"#,
        );
        let first_edition = events_schema().index_of("src_pos").unwrap() + 1;
        let old_schema = Arc::new(ArrowSchema::new(
            events_schema().fields()[..first_edition].to_vec(),
        ));
        let old = RecordBatch::try_new(old_schema.clone(), old.columns()[..first_edition].to_vec())
            .unwrap();
        lake.write_parquet("events", day, "part-a.parquet", old_schema, &[old])
            .unwrap();
        let new = batch(
            r#"{"event_id":"h2","type":"heartbeat","ts":"2026-03-02T09:15:19Z","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":16,"playing":true,"visible":true,"input_events":4}"#,
        );
        lake.write_parquet("events", day, "part-b.parquet", events_schema(), &[new])
            .unwrap();
        let rows = load_events(&lake, day, day).unwrap();
        assert_eq!(rows.height(), 2);
        let inputs = rows.column("input_events").unwrap().i64().unwrap();
        assert_eq!((inputs.get(0), inputs.get(1)), (None, Some(4)));
    }
}

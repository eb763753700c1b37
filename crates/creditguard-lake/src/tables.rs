//! The result tables in Parquet, for every stage that reads or writes them: Arrow batches of
//! results-v1 records and the scorer's own tables (`results/claim_issues`, `results/progress`,
//! `results/warnings`), writers that replace a day atomically, and readers that turn a period of
//! a table back into records. The flags table is [`crate::flags`].

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use creditguard_contract::{
    cases_schema, credits_schema, decisions_schema, rule_feedback_schema, ts_type, Case, Credit,
    Decision, RuleFeedback,
};
use serde::{Deserialize, Serialize};

use crate::read::{for_each_batch, Nums, StrLists, Strs, Times};
use crate::{Error, Lake, Result};

/// The flags table is read and written by [`crate::flags`] for every stage.
pub use crate::flags::{flags_batch, read_flags, write_flags, FLAGS};

/// Table names in the lake.
pub const CREDITS: &str = "results/credits";
pub const CASES: &str = "results/cases";
pub const CLAIM_ISSUES: &str = "results/claim_issues";
pub const PROGRESS: &str = "results/progress";
pub const STREAM: &str = "results/stream";
/// Reviewers' decisions (partition = day of `decided_at`), written by `creditguard review decide`.
pub const DECISIONS: &str = "results/decisions";
/// Reminders for a notifier (partition = the scored period's last day).
pub const WARNINGS: &str = "results/warnings";
/// Reviewers' verdicts per rule and org unit (partition = the as-of day).
pub const RULE_FEEDBACK: &str = "results/rule_feedback";

/// A credit claim that disagrees with the catalog (`results/claim_issues`). The claim is still
/// judged in `results/credits`; this row says what is odd about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimIssue {
    /// `stable_id(credit_id, issue)`.
    pub issue_id: String,
    pub run_id: String,
    /// The `results/credits` record of the claim.
    pub credit_id: String,
    pub user_id: String,
    pub course_id: String,
    pub completed_at: i64,
    /// `unknown_course`, `credits_mismatch`, `category_mismatch`, `repeat_completion`, or one of
    /// the earning rules' refusals (`quiz_not_passed`, `live_accrues_hourly`, see
    /// [`crate::earning`]).
    pub issue: String,
    pub credits_claimed: f64,
    /// The catalog's credits for the course (absent for an unknown course).
    pub catalog_credits: Option<f64>,
    /// One sentence for a person.
    pub detail: String,
}

pub use creditguard_contract::Progress;

fn utf8(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn utf8_opt(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}
fn ts(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}
fn f64s(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}
fn lists(v: Vec<Vec<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for items in v {
        for s in items {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Batch(e.to_string()))
}

/// `results/credits` rows as one Arrow batch of [`credits_schema`].
pub fn credits_batch(rows: &[Credit]) -> Result<RecordBatch> {
    let m = |f: fn(&Credit) -> String| rows.iter().map(f).collect::<Vec<_>>();
    batch(
        credits_schema(),
        vec![
            utf8(m(|c| c.credit_id.clone())),
            utf8(m(|c| c.run_id.clone())),
            utf8(m(|c| c.user_id.clone())),
            utf8_opt(rows.iter().map(|c| c.org_unit.clone()).collect()),
            utf8(m(|c| c.course_id.clone())),
            utf8(m(|c| c.category.clone())),
            ts(rows.iter().map(|c| c.completed_at).collect()),
            f64s(rows.iter().map(|c| c.credits_claimed).collect()),
            f64s(rows.iter().map(|c| c.credits_granted).collect()),
            utf8(m(|c| c.status.clone())),
            lists(rows.iter().map(|c| c.flag_ids.clone()).collect()),
            utf8_opt(rows.iter().map(|c| c.rules_version.clone()).collect()),
            utf8_opt(rows.iter().map(|c| c.rules_name.clone()).collect()),
            utf8_opt(rows.iter().map(|c| c.policy_version.clone()).collect()),
        ],
    )
}

/// `results/decisions` rows as one Arrow batch of [`decisions_schema`].
pub fn decisions_batch(rows: &[Decision]) -> Result<RecordBatch> {
    let m = |f: fn(&Decision) -> String| rows.iter().map(f).collect::<Vec<_>>();
    batch(
        decisions_schema(),
        vec![
            utf8(m(|d| d.decision_id.clone())),
            utf8(m(|d| d.case_id.clone())),
            utf8(m(|d| d.user_id.clone())),
            utf8_opt(rows.iter().map(|d| d.org_unit.clone()).collect()),
            utf8(m(|d| d.decision.clone())),
            utf8(m(|d| d.reviewer.clone())),
            utf8(m(|d| d.reason.clone())),
            ts(rows.iter().map(|d| d.decided_at).collect()),
            lists(rows.iter().map(|d| d.released_credit_ids.clone()).collect()),
            lists(
                rows.iter()
                    .map(|d| d.cancelled_credit_ids.clone())
                    .collect(),
            ),
            f64s(rows.iter().map(|d| d.credits_released).collect()),
            f64s(rows.iter().map(|d| d.credits_cancelled).collect()),
            lists(rows.iter().map(|d| d.flag_ids.clone()).collect()),
            utf8_opt(rows.iter().map(|d| d.supersedes.clone()).collect()),
        ],
    )
}

/// `results/rule_feedback` rows as one Arrow batch of [`rule_feedback_schema`].
pub fn rule_feedback_batch(rows: &[RuleFeedback]) -> Result<RecordBatch> {
    batch(
        rule_feedback_schema(),
        vec![
            utf8(rows.iter().map(|r| r.rule.clone()).collect()),
            utf8_opt(rows.iter().map(|r| r.org_unit.clone()).collect()),
            Arc::new(arrow_array::Int64Array::from_iter_values(
                rows.iter().map(|r| r.confirmed),
            )),
            Arc::new(arrow_array::Int64Array::from_iter_values(
                rows.iter().map(|r| r.dismissed),
            )),
            Arc::new(arrow_array::Int64Array::from_iter_values(
                rows.iter().map(|r| r.pending),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.confirmed_share).collect::<Vec<_>>(),
            )),
            ts(rows.iter().map(|r| r.as_of).collect()),
        ],
    )
}

/// `results/cases` rows as one Arrow batch of [`cases_schema`].
pub fn cases_batch(rows: &[Case]) -> Result<RecordBatch> {
    let m = |f: fn(&Case) -> String| rows.iter().map(f).collect::<Vec<_>>();
    batch(
        cases_schema(),
        vec![
            utf8(m(|c| c.case_id.clone())),
            utf8(m(|c| c.run_id.clone())),
            utf8(m(|c| c.user_id.clone())),
            utf8_opt(rows.iter().map(|c| c.org_unit.clone()).collect()),
            ts(rows.iter().map(|c| c.period_start).collect()),
            ts(rows.iter().map(|c| c.period_end).collect()),
            f64s(rows.iter().map(|c| c.risk).collect()),
            lists(rows.iter().map(|c| c.flag_ids.clone()).collect()),
            lists(rows.iter().map(|c| c.detectors.clone()).collect()),
            f64s(rows.iter().map(|c| c.credits_withheld).collect()),
            utf8(m(|c| c.status.clone())),
            utf8_opt(rows.iter().map(|c| c.previous_case_id.clone()).collect()),
            utf8_opt(rows.iter().map(|c| c.assignee.clone()).collect()),
        ],
    )
}

/// Arrow schema of `results/claim_issues`.
pub fn claim_issues_schema() -> SchemaRef {
    use DataType::{Float64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("issue_id", Utf8, false),
        Field::new("run_id", Utf8, false),
        Field::new("credit_id", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("course_id", Utf8, false),
        Field::new("completed_at", ts_type(), false),
        Field::new("issue", Utf8, false),
        Field::new("credits_claimed", Float64, false),
        Field::new("catalog_credits", Float64, true),
        Field::new("detail", Utf8, false),
    ]))
}

/// `results/claim_issues` rows as one Arrow batch.
pub fn claim_issues_batch(rows: &[ClaimIssue]) -> Result<RecordBatch> {
    let m = |f: fn(&ClaimIssue) -> String| rows.iter().map(f).collect::<Vec<_>>();
    batch(
        claim_issues_schema(),
        vec![
            utf8(m(|c| c.issue_id.clone())),
            utf8(m(|c| c.run_id.clone())),
            utf8(m(|c| c.credit_id.clone())),
            utf8(m(|c| c.user_id.clone())),
            utf8(m(|c| c.course_id.clone())),
            ts(rows.iter().map(|c| c.completed_at).collect()),
            utf8(m(|c| c.issue.clone())),
            f64s(rows.iter().map(|c| c.credits_claimed).collect()),
            Arc::new(Float64Array::from(
                rows.iter().map(|c| c.catalog_credits).collect::<Vec<_>>(),
            )),
            utf8(m(|c| c.detail.clone())),
        ],
    )
}

/// The columns of `results/progress`, in order.
const PROGRESS_NAMES: [&str; 23] = [
    "progress_id",
    "run_id",
    "user_id",
    "org_unit",
    "year",
    "as_of",
    "credits_granted",
    "credits_withheld",
    "mandatory_granted",
    "mandatory_withheld",
    "target_credits",
    "mandatory_target",
    "expected_by_now",
    "share_of_target",
    "mandatory_share",
    "status",
    "elective_granted",
    "elective_target",
    "practice_granted",
    "practice_target",
    "policy_rule",
    "policy_version",
    "topic_credits",
];

/// Columns added to `results/progress` with policies: absent from older files.
const PROGRESS_OPTIONAL: [&str; 7] = [
    "elective_granted",
    "elective_target",
    "practice_granted",
    "practice_target",
    "policy_rule",
    "policy_version",
    "topic_credits",
];

/// Arrow schema of `results/progress`.
pub fn progress_schema() -> SchemaRef {
    use DataType::{Float64, Int32, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("progress_id", Utf8, false),
        Field::new("run_id", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("year", Int32, false),
        Field::new("as_of", ts_type(), false),
        Field::new("credits_granted", Float64, false),
        Field::new("credits_withheld", Float64, false),
        Field::new("mandatory_granted", Float64, false),
        Field::new("mandatory_withheld", Float64, false),
        Field::new("target_credits", Float64, false),
        Field::new("mandatory_target", Float64, false),
        Field::new("expected_by_now", Float64, false),
        Field::new("share_of_target", Float64, false),
        Field::new("mandatory_share", Float64, false),
        Field::new("status", Utf8, false),
        Field::new("elective_granted", Float64, true),
        Field::new("elective_target", Float64, true),
        Field::new("practice_granted", Float64, true),
        Field::new("practice_target", Float64, true),
        Field::new("policy_rule", Utf8, true),
        Field::new("policy_version", Utf8, true),
        Field::new("topic_credits", Utf8, true),
    ]))
}

/// `results/progress` rows as one Arrow batch.
pub fn progress_batch(rows: &[Progress]) -> Result<RecordBatch> {
    let m = |f: fn(&Progress) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let n = |f: fn(&Progress) -> f64| f64s(rows.iter().map(f).collect());
    batch(
        progress_schema(),
        vec![
            utf8(m(|p| p.progress_id.clone())),
            utf8(m(|p| p.run_id.clone())),
            utf8(m(|p| p.user_id.clone())),
            utf8_opt(rows.iter().map(|p| p.org_unit.clone()).collect()),
            Arc::new(Int32Array::from(
                rows.iter().map(|p| p.year).collect::<Vec<_>>(),
            )),
            ts(rows.iter().map(|p| p.as_of).collect()),
            n(|p| p.credits_granted),
            n(|p| p.credits_withheld),
            n(|p| p.mandatory_granted),
            n(|p| p.mandatory_withheld),
            n(|p| p.target_credits),
            n(|p| p.mandatory_target),
            n(|p| p.expected_by_now),
            n(|p| p.share_of_target),
            n(|p| p.mandatory_share),
            utf8(m(|p| p.status.clone())),
            n(|p| p.elective_granted),
            n(|p| p.elective_target),
            n(|p| p.practice_granted),
            n(|p| p.practice_target),
            utf8_opt(rows.iter().map(|p| p.policy_rule.clone()).collect()),
            utf8_opt(rows.iter().map(|p| p.policy_version.clone()).collect()),
            utf8_opt(rows.iter().map(|p| p.topic_credits.clone()).collect()),
        ],
    )
}

/// `results/warnings` rows as one Arrow batch.
pub fn warnings_batch(rows: &[creditguard_contract::Warning]) -> Result<RecordBatch> {
    let m =
        |f: fn(&creditguard_contract::Warning) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let o = |f: fn(&creditguard_contract::Warning) -> Option<String>| {
        utf8_opt(rows.iter().map(f).collect())
    };
    batch(
        creditguard_contract::warnings_schema(),
        vec![
            utf8(m(|w| w.warning_id.clone())),
            utf8(m(|w| w.run_id.clone())),
            utf8(m(|w| w.reason.clone())),
            utf8(m(|w| w.user_id.clone())),
            o(|w| w.org_unit.clone()),
            o(|w| w.course_id.clone()),
            o(|w| w.category.clone()),
            o(|w| w.due_on.clone()),
            Arc::new(arrow_array::Int64Array::from(
                rows.iter().map(|w| w.days_left).collect::<Vec<_>>(),
            )),
            Arc::new(arrow_array::Float64Array::from(
                rows.iter().map(|w| w.value).collect::<Vec<_>>(),
            )),
            utf8(m(|w| w.message.clone())),
            utf8(m(|w| w.message_zh.clone())),
            ts(rows.iter().map(|w| w.as_of).collect()),
        ],
    )
}

/// The ids of the warnings written on the days `from..=to`.
pub fn read_warning_ids(
    lake: &Lake,
    from: i64,
    to: i64,
) -> Result<std::collections::HashSet<String>> {
    let mut out = std::collections::HashSet::new();
    if from > to {
        return Ok(out);
    }
    for_each_batch(&lake.files(WARNINGS, from, to)?, &["warning_id"], |b| {
        let ids = Strs::of(&b, "warning_id")?;
        out.extend((0..b.num_rows()).map(|i| ids.string(i)));
        Ok(())
    })?;
    Ok(out)
}

/// The detectors' watch-time features (`watch_time`'s per lesson and day).
pub const WATCH_TIME_FEATURES: &str = "features/watch_time";

/// Engaged hours per learner in the window `from_us..to_us` (UTC µs; a business month so far
/// begins and ends at local midnights, off UTC midnights). `engaged_s` of `features/watch_time`
/// (playing visibly and not muted) is kept per lesson and UTC day with the lesson's first and
/// last event (`first_t`, `last_t`, UTC µs): a row inside the window counts whole, one across its edge
/// counts by the share of its span inside. `None` when a day of the window with events has no
/// watch-time features (the job did not run for it): the hours would be undercounted.
pub fn engaged_hours(
    lake: &Lake,
    from_us: i64,
    to_us: i64,
) -> Result<Option<std::collections::HashMap<String, f64>>> {
    use creditguard_contract::time::day_of_us;
    let (from, to) = (day_of_us(from_us), day_of_us(to_us - 1));
    let measured: std::collections::HashSet<i64> =
        lake.days(WATCH_TIME_FEATURES)?.into_iter().collect();
    let unmeasured = lake
        .days("events")?
        .into_iter()
        .filter(|d| (from..=to).contains(d) && !measured.contains(d))
        .count();
    if unmeasured > 0 {
        tracing::warn!(days = unmeasured, "Days with events but no watch-time features this month: no monthly_hours_low reminders.");
        return Ok(None);
    }
    let mut out = std::collections::HashMap::new();
    let files = lake.files(WATCH_TIME_FEATURES, from, to)?;
    let cols = ["user_id", "engaged_s", "first_t", "last_t"];
    for_each_batch(&files, &cols, |b| {
        let (user, engaged) = (Strs::of(b, "user_id")?, Nums::of(b, "engaged_s")?);
        let (first, last) = (micros(b, "first_t")?, micros(b, "last_t")?);
        for i in 0..b.num_rows() {
            let (Some(a), Some(z)) = (first[i], last[i]) else {
                continue;
            };
            let inside = if z > a {
                (z.min(to_us) - a.max(from_us)).max(0) as f64 / (z - a) as f64
            } else {
                f64::from(u8::from((from_us..to_us).contains(&a)))
            };
            if inside > 0.0 {
                *out.entry(user.string(i)).or_insert(0.0) +=
                    engaged.get(i).unwrap_or(0.0) * inside / 3600.0;
            }
        }
        Ok(())
    })?;
    Ok(Some(out))
}

/// A column of UTC microseconds: `Int64` as the jobs' features keep event times, or a timestamp.
fn micros(b: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    use arrow_array::Array;
    let col = b.column_by_name(name);
    match col.and_then(|c| c.as_any().downcast_ref::<arrow_array::Int64Array>()) {
        Some(a) => Ok((0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect()),
        None => {
            let t = Times::of(b, name)?;
            Ok((0..b.num_rows()).map(|i| t.get(i)).collect())
        }
    }
}

/// Replaces `table/dt=<day>` with one `part-0.parquet` holding `batch` (zero rows is a valid
/// file: a day whose results vanished on a re-run must be emptied, not left stale).
pub fn replace_day(lake: &Lake, table: &str, day: i64, batch: RecordBatch) -> Result<()> {
    lake.replace_partition(table, day, |staging| {
        let file = std::fs::File::create(staging.join("part-0.parquet"))?;
        crate::write_parquet_to(file, batch.schema(), &[batch])?;
        Ok(())
    })?;
    Ok(())
}

/// Groups rows by day and replaces every day of `from..=to` (days without rows get an empty file).
pub fn write_days<T>(
    lake: &Lake,
    table: &str,
    from: i64,
    to: i64,
    rows: &[T],
    day_of: impl Fn(&T) -> i64,
    to_batch: impl Fn(&[T]) -> Result<RecordBatch>,
) -> Result<()>
where
    T: Clone,
{
    let mut by_day: BTreeMap<i64, Vec<T>> = (from..=to).map(|d| (d, Vec::new())).collect();
    for r in rows {
        by_day.entry(day_of(r)).or_default().push(r.clone());
    }
    for (day, rows) in by_day {
        replace_day(lake, table, day, to_batch(&rows)?)?;
    }
    Ok(())
}

/// The `results/credits` records of the days `from..=to`.
pub fn read_credits(lake: &Lake, from: i64, to: i64) -> Result<Vec<Credit>> {
    let files = lake.files(CREDITS, from, to)?;
    let schema = credits_schema();
    // The version columns came later; files written before lack them.
    let optional = ["rules_version", "rules_name", "policy_version"];
    let mut out = Vec::new();
    for path in files {
        let names = names_in(&schema, &optional, &path)?;
        read_credits_file(&path, &names, &mut out)?;
    }
    Ok(out)
}

/// The schema's column names a file holds: all of them but the `optional` ones it lacks.
fn names_in<'a>(
    schema: &'a Schema,
    optional: &[&str],
    path: &std::path::Path,
) -> Result<Vec<&'a str>> {
    let present = crate::read::columns_of(path)?;
    Ok(names(schema)
        .into_iter()
        .filter(|n| !optional.contains(n) || present.iter().any(|p| p == n))
        .collect())
}

fn read_credits_file(path: &std::path::Path, names: &[&str], out: &mut Vec<Credit>) -> Result<()> {
    for_each_batch(&[path.to_path_buf()], names, |b| {
        let s = |n| Strs::of(&b, n);
        let (id, run, user, org, course, cat, status) = (
            s("credit_id")?,
            s("run_id")?,
            s("user_id")?,
            s("org_unit")?,
            s("course_id")?,
            s("category")?,
            s("status")?,
        );
        let (rules, rules_name, policy) = (
            Strs::of(&b, "rules_version").ok(),
            Strs::of(&b, "rules_name").ok(),
            Strs::of(&b, "policy_version").ok(),
        );
        let at = Times::of(&b, "completed_at")?;
        let (claimed, granted) = (
            Nums::of(&b, "credits_claimed")?,
            Nums::of(&b, "credits_granted")?,
        );
        let mut flag_ids = StrLists::of(&b, "flag_ids")?;
        for i in 0..b.num_rows() {
            out.push(Credit {
                credit_id: id.string(i),
                run_id: run.string(i),
                user_id: user.string(i),
                org_unit: org.opt(i),
                course_id: course.string(i),
                category: cat.string(i),
                completed_at: at.get(i).unwrap_or(0),
                credits_claimed: claimed.get(i).unwrap_or(0.0),
                credits_granted: granted.get(i).unwrap_or(0.0),
                status: status.string(i),
                flag_ids: flag_ids.take(i),
                rules_version: rules.as_ref().and_then(|v| v.opt(i)),
                rules_name: rules_name.as_ref().and_then(|v| v.opt(i)),
                policy_version: policy.as_ref().and_then(|v| v.opt(i)),
            });
        }
        Ok(())
    })
}

/// The `results/cases` records of the days `from..=to`.
pub fn read_cases(lake: &Lake, from: i64, to: i64) -> Result<Vec<Case>> {
    let files = lake.files(CASES, from, to)?;
    let mut out = Vec::new();
    // `previous_case_id` and `assignee` came with review cases; files written before lack them.
    let optional = ["previous_case_id", "assignee"];
    let schema = cases_schema();
    for path in files {
        let names = names_in(&schema, &optional, &path)?;
        read_cases_file(&path, &names, &mut out)?;
    }
    Ok(out)
}

fn read_cases_file(path: &std::path::Path, names: &[&str], out: &mut Vec<Case>) -> Result<()> {
    for_each_batch(&[path.to_path_buf()], names, |b| {
        let (prev, assignee) = (
            Strs::of(&b, "previous_case_id").ok(),
            Strs::of(&b, "assignee").ok(),
        );
        let s = |n| Strs::of(&b, n);
        let (id, run, user, org, status) = (
            s("case_id")?,
            s("run_id")?,
            s("user_id")?,
            s("org_unit")?,
            s("status")?,
        );
        let (ps, pe) = (Times::of(&b, "period_start")?, Times::of(&b, "period_end")?);
        let (risk, withheld) = (Nums::of(&b, "risk")?, Nums::of(&b, "credits_withheld")?);
        let (mut flag_ids, mut detectors) = (
            StrLists::of(&b, "flag_ids")?,
            StrLists::of(&b, "detectors")?,
        );
        for i in 0..b.num_rows() {
            out.push(Case {
                case_id: id.string(i),
                run_id: run.string(i),
                user_id: user.string(i),
                org_unit: org.opt(i),
                period_start: ps.get(i).unwrap_or(0),
                period_end: pe.get(i).unwrap_or(0),
                risk: risk.get(i).unwrap_or(0.0),
                flag_ids: flag_ids.take(i),
                detectors: detectors.take(i),
                credits_withheld: withheld.get(i).unwrap_or(0.0),
                status: status.string(i),
                previous_case_id: prev.as_ref().and_then(|p| p.opt(i)),
                assignee: assignee.as_ref().and_then(|a| a.opt(i)),
            });
        }
        Ok(())
    })?;
    Ok(())
}

/// The `results/claim_issues` rows of the days `from..=to`.
pub fn read_claim_issues(lake: &Lake, from: i64, to: i64) -> Result<Vec<ClaimIssue>> {
    let files = lake.files(CLAIM_ISSUES, from, to)?;
    let schema = claim_issues_schema();
    let names = names(&schema);
    let mut out = Vec::new();
    for_each_batch(&files, &names, |b| {
        let s = |n| Strs::of(&b, n);
        let (id, run, credit, user, course, issue, detail) = (
            s("issue_id")?,
            s("run_id")?,
            s("credit_id")?,
            s("user_id")?,
            s("course_id")?,
            s("issue")?,
            s("detail")?,
        );
        let at = Times::of(&b, "completed_at")?;
        let (claimed, cat) = (
            Nums::of(&b, "credits_claimed")?,
            Nums::of(&b, "catalog_credits")?,
        );
        for i in 0..b.num_rows() {
            out.push(ClaimIssue {
                issue_id: id.string(i),
                run_id: run.string(i),
                credit_id: credit.string(i),
                user_id: user.string(i),
                course_id: course.string(i),
                completed_at: at.get(i).unwrap_or(0),
                issue: issue.string(i),
                credits_claimed: claimed.get(i).unwrap_or(0.0),
                catalog_credits: cat.get(i),
                detail: detail.string(i),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// The `results/rule_feedback` rows of one day.
pub fn read_rule_feedback(lake: &Lake, day: i64) -> Result<Vec<RuleFeedback>> {
    let files = lake.partition_files(RULE_FEEDBACK, day)?;
    let schema = rule_feedback_schema();
    let names = names(&schema);
    let mut out = Vec::new();
    for_each_batch(&files, &names, |b| {
        let (rule, org) = (Strs::of(&b, "rule")?, Strs::of(&b, "org_unit")?);
        let n = |name| Nums::of(&b, name);
        let (c, d, p, share) = (
            n("confirmed")?,
            n("dismissed")?,
            n("pending")?,
            n("confirmed_share")?,
        );
        let as_of = Times::of(&b, "as_of")?;
        for i in 0..b.num_rows() {
            let count = |v: &Nums| v.get(i).unwrap_or(0.0) as i64;
            out.push(RuleFeedback {
                rule: rule.string(i),
                org_unit: org.get(i).map(str::to_string),
                confirmed: count(&c),
                dismissed: count(&d),
                pending: count(&p),
                confirmed_share: share.get(i),
                as_of: as_of.get(i).unwrap_or(0),
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// The `results/progress` rows of one day.
pub fn read_progress(lake: &Lake, day: i64) -> Result<Vec<Progress>> {
    let files = lake.partition_files(PROGRESS, day)?;
    let mut out = Vec::new();
    for file in &files {
        // Files written before the policy columns existed lack them: read what is there.
        let have = crate::read::columns_of(file)?;
        let wanted: Vec<&str> = PROGRESS_NAMES
            .into_iter()
            .filter(|c| !PROGRESS_OPTIONAL.contains(c) || have.iter().any(|h| h == c))
            .collect();
        for_each_batch(std::slice::from_ref(file), &wanted, |b| {
            let s = |n| Strs::of(&b, n);
            let (id, run, user, org, status) = (
                s("progress_id")?,
                s("run_id")?,
                s("user_id")?,
                s("org_unit")?,
                s("status")?,
            );
            let as_of = Times::of(&b, "as_of")?;
            let year = Nums::of(&b, "year")?;
            let (eg, et, pg, pt) = (
                Nums::optional(b, "elective_granted")?,
                Nums::optional(b, "elective_target")?,
                Nums::optional(b, "practice_granted")?,
                Nums::optional(b, "practice_target")?,
            );
            let opt_strs = |name| Strs::optional(b, name);
            let (rule, version) = (opt_strs("policy_rule")?, opt_strs("policy_version")?);
            let topics = opt_strs("topic_credits")?;
            let num = |n: &Option<Nums>, i| n.as_ref().and_then(|n| n.get(i)).unwrap_or(0.0);
            let n = |name| Nums::of(&b, name);
            let (g, w, mg, mw, t, mt, e, sh, msh) = (
                n("credits_granted")?,
                n("credits_withheld")?,
                n("mandatory_granted")?,
                n("mandatory_withheld")?,
                n("target_credits")?,
                n("mandatory_target")?,
                n("expected_by_now")?,
                n("share_of_target")?,
                n("mandatory_share")?,
            );
            for i in 0..b.num_rows() {
                out.push(Progress {
                    progress_id: id.string(i),
                    run_id: run.string(i),
                    user_id: user.string(i),
                    org_unit: org.opt(i),
                    year: year.get(i).unwrap_or(0.0) as i32,
                    as_of: as_of.get(i).unwrap_or(0),
                    credits_granted: g.get(i).unwrap_or(0.0),
                    credits_withheld: w.get(i).unwrap_or(0.0),
                    mandatory_granted: mg.get(i).unwrap_or(0.0),
                    mandatory_withheld: mw.get(i).unwrap_or(0.0),
                    target_credits: t.get(i).unwrap_or(0.0),
                    mandatory_target: mt.get(i).unwrap_or(0.0),
                    expected_by_now: e.get(i).unwrap_or(0.0),
                    share_of_target: sh.get(i).unwrap_or(0.0),
                    mandatory_share: msh.get(i).unwrap_or(0.0),
                    status: status.string(i),
                    elective_granted: num(&eg, i),
                    elective_target: num(&et, i),
                    practice_granted: num(&pg, i),
                    practice_target: num(&pt, i),
                    policy_rule: rule.as_ref().and_then(|s| s.opt(i)),
                    policy_version: version.as_ref().and_then(|s| s.opt(i)),
                    topic_credits: topics.as_ref().and_then(|s| s.opt(i)),
                });
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn names(schema: &Schema) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

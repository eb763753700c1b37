//! `shared_device`: one device signing in many accounts in a day (proxy sign-in, 代签).
//!
//! Features (`features/shared_device`), one row per device × day that logged in or checked in
//! any account: `accounts` (distinct users), `events`, `first_t`, `last_t`, `users` (sorted).
//! Rule `many_accounts`: ≥ `min_accounts` accounts; one flag per account involved, so each
//! learner's review shows it. Keyed on the device fingerprint, never the IP address: a whole
//! office behind one Wi-Fi shares an address honestly. Known shared devices (training-room PCs,
//! kiosks: `[jobs.proxy_learning] shared_devices_file` / `shared_devices`) are measured but
//! never flagged: everyone signing in there is what they are for.

use std::collections::{HashMap, HashSet};

use polars::prelude::*;
use serde_json::json;

use crate::config::SharedDeviceConfig;
use crate::events::{day_of, same_as_prev, type_in};
use crate::explain;
use crate::flags::{list_strings, ramp, sort, Draft, Rows};
use crate::{Flag, JobOutput, Result};

/// The `shared_device` job over the events, without known shared devices.
pub fn detect(events: LazyFrame, cfg: &SharedDeviceConfig) -> Result<JobOutput> {
    detect_known(events, cfg, &HashSet::new())
}

/// The `shared_device` job over the events; `known_shared` devices raise no flag.
pub fn detect_known(
    events: LazyFrame,
    cfg: &SharedDeviceConfig,
    known_shared: &HashSet<String>,
) -> Result<JobOutput> {
    // Collected once: the features and the org units of flagged accounts both read it.
    let rows = sign_ins(events, cfg).collect()?;
    let features = device_days(&rows).collect()?;
    let shared = shared_devices(&features, cfg, known_shared).collect()?;
    let mut flags = many_accounts(&shared, &rows, cfg)?;
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

/// The sign-in events (`event_types`) that name a device: `device_id`, `user_id`, `org_unit`,
/// `t`, `day`.
fn sign_ins(events: LazyFrame, cfg: &SharedDeviceConfig) -> LazyFrame {
    let types: Vec<&str> = cfg.event_types.iter().map(String::as_str).collect();
    events
        .filter(type_in(&types).and(col("device_id").is_not_null()))
        .select([
            col("device_id"),
            col("user_id"),
            col("org_unit"),
            col("t"),
            day_of(col("t")).alias("day"),
        ])
}

/// The features, one row per device and day: `accounts` (distinct), `events`, `first_t`,
/// `last_t`, `users` (sorted).
fn device_days(rows: &DataFrame) -> LazyFrame {
    // Distinct accounts by sorting instead of a hash set per group: in (device, day, user)
    // order the first row of each user is a new account, and those rows, in order, are the
    // sorted list of accounts.
    rows.clone()
        .lazy()
        .sort(
            ["device_id", "day", "user_id", "t"],
            crate::events::sort_opts(),
        )
        .with_column(
            same_as_prev(&["device_id", "day", "user_id"])
                .not()
                .alias("_new_user"),
        )
        // Groups in the order they first appear, which the sort made (device, day): sorting the
        // groups after a hash group-by cost more than the group-by itself.
        .group_by_stable([col("device_id"), col("day")])
        .agg([
            col("_new_user")
                .sum()
                .cast(DataType::Int64)
                .alias("accounts"),
            len().cast(DataType::Int64).alias("events"),
            col("t").min().alias("first_t"),
            col("t").max().alias("last_t"),
            col("user_id").filter(col("_new_user")).alias("users"),
        ])
}

/// The device-days with at least `min_accounts` accounts, known shared devices left out.
fn shared_devices(
    features: &DataFrame,
    cfg: &SharedDeviceConfig,
    known_shared: &HashSet<String>,
) -> LazyFrame {
    let known: Vec<&str> = known_shared.iter().map(String::as_str).collect();
    features
        .clone()
        .lazy()
        .filter(
            col("accounts")
                .gt_eq(lit(cfg.min_accounts as i64))
                .and(if known.is_empty() {
                    lit(true)
                } else {
                    col("device_id")
                        .is_in(
                            lit(Series::new("known".into(), known)).implode(false),
                            false,
                        )
                        .not()
                }),
        )
}

/// `many_accounts`: a flag for each account of each row of [`shared_devices`].
fn many_accounts(
    shared: &DataFrame,
    rows: &DataFrame,
    cfg: &SharedDeviceConfig,
) -> Result<Vec<Flag>> {
    let r = Rows(shared);
    let users = r.list("users")?;
    let accounts: Vec<Vec<String>> = (0..r.len()).map(|i| list_strings(users, i)).collect();
    let org_of = first_org_units(rows, &accounts)?;
    let (dev, acc, n_ev, first, last) = (
        r.str("device_id")?,
        r.i64("accounts")?,
        r.i64("events")?,
        r.i64("first_t")?,
        r.i64("last_t")?,
    );
    let mut flags = Vec::new();
    let min = cfg.min_accounts as f64;
    for i in 0..r.len() {
        let d = dev.get(i).unwrap_or_default();
        let n = acc.get(i).unwrap_or(0);
        let (ws, we) = (first.get(i).unwrap_or(0), last.get(i).unwrap_or(0));
        let all = &accounts[i];
        let text = explain::many_accounts(
            &explain::ManyAccounts {
                device: d,
                accounts: n,
                start: ws,
                end: we,
            },
            cfg,
        );
        for u in all {
            flags.push(
                Draft {
                    rule: "shared_device.many_accounts",
                    user_id: u.clone(),
                    org_unit: org_of.get(u.as_str()).copied().flatten().map(str::to_string),
                    course_id: None,
                    window_start: ws,
                    window_end: we,
                    severity: ramp((n as f64 - min) / min),
                    key: d.to_string(),
                    evidence: json!({
                        "device_id": d, "accounts": n, "users": all, "events": n_ev.get(i).unwrap_or(0),
                        "event_types": cfg.event_types, "threshold_accounts": cfg.min_accounts,
                    })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                    en: text.en.clone(),
                    zh: text.zh.clone(),
                }
                .finish(),
            );
        }
    }
    Ok(flags)
}

/// The org unit of each of `accounts`, for the flag rows: its first sign-in that names one. A
/// pass over the sign-ins, looking up the (few) flagged accounts, instead of grouping every
/// account.
fn first_org_units<'a>(
    rows: &'a DataFrame,
    accounts: &'a [Vec<String>],
) -> Result<HashMap<&'a str, Option<&'a str>>> {
    let mut org_of: HashMap<&str, Option<&str>> = accounts
        .iter()
        .flatten()
        .map(|u| (u.as_str(), None))
        .collect();
    if !org_of.is_empty() {
        let rr = Rows(rows);
        let (u, o) = (rr.str("user_id")?, rr.str("org_unit")?);
        for (user, org) in u.iter().zip(o.iter()) {
            if let (Some(user), Some(org)) = (user, org) {
                if let Some(slot @ None) = org_of.get_mut(user) {
                    *slot = Some(org);
                }
            }
        }
    }
    Ok(org_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn run(ev: &[String]) -> JobOutput {
        detect(frame(ev).lazy(), &SharedDeviceConfig::default()).unwrap()
    }

    #[test]
    fn one_phone_checking_in_three_accounts_fires_for_each() {
        let out = run(&[
            checkin("u1", "c1", "phone-1", 0.0),
            checkin("u2", "c1", "phone-1", 10.0),
            checkin("u3", "c1", "phone-1", 20.0),
            checkin("u4", "c1", "phone-4", 20.0),
        ]);
        let users: Vec<&str> = out.flags.iter().map(|f| f.user_id.as_str()).collect();
        assert_eq!(users, ["u1", "u2", "u3"]);
        assert!(
            out.flags[0]
                .evidence
                .contains(r#""users":["u1","u2","u3"]"#),
            "{}",
            out.flags[0].evidence
        );
        assert_eq!(out.flags[0].severity, 0.5);
    }

    #[test]
    fn a_known_shared_device_is_measured_but_never_flagged() {
        let ev = [
            checkin("u1", "c1", "room-pc", 0.0),
            checkin("u2", "c1", "room-pc", 10.0),
            checkin("u3", "c1", "room-pc", 20.0),
        ];
        let known: HashSet<String> = ["room-pc".to_string()].into();
        let out = detect_known(frame(&ev).lazy(), &SharedDeviceConfig::default(), &known).unwrap();
        assert!(out.flags.is_empty());
        assert_eq!(out.features.height(), 1, "the device-day is still measured");
        assert_eq!(
            run(&ev).flags.len(),
            3,
            "unknown, the same sign-ins are flagged"
        );
    }

    #[test]
    fn each_flag_carries_the_first_org_unit_its_account_signed_in_with() {
        let with_org = |line: String, org: Option<&str>| {
            let replacement = org.map_or(String::new(), |o| format!(r#""org_unit":"{o}","#));
            line.replace(r#""org_unit":"ou1","#, &replacement)
        };
        let out = run(&[
            // u1 names no org on the shared phone, then "sales" on its own one, then "hr".
            with_org(checkin("u1", "c1", "phone-1", 0.0), None),
            with_org(checkin("u1", "c1", "phone-9", 5.0), Some("sales")),
            with_org(checkin("u1", "c1", "phone-9", 6.0), Some("hr")),
            with_org(checkin("u2", "c1", "phone-1", 10.0), Some("ops")),
            // u3 never names one.
            with_org(checkin("u3", "c1", "phone-1", 20.0), None),
            // u4 is not flagged.
            with_org(checkin("u4", "c1", "phone-4", 20.0), Some("it")),
        ]);
        let orgs: Vec<(&str, Option<&str>)> = out
            .flags
            .iter()
            .map(|f| (f.user_id.as_str(), f.org_unit.as_deref()))
            .collect();
        assert_eq!(
            orgs,
            [("u1", Some("sales")), ("u2", Some("ops")), ("u3", None)]
        );
    }

    #[test]
    fn shared_office_wifi_and_two_accounts_do_not() {
        // Ten colleagues behind one address, each on their own device; one device with two accounts.
        let mut ev: Vec<String> = (0..10)
            .map(|i| {
                act(
                    "login",
                    &format!("u{i}"),
                    &format!("s{i}"),
                    &format!("pc{i}"),
                    "203.0.113.7",
                    i as f64,
                    None,
                )
            })
            .collect();
        ev.push(act(
            "login",
            "u0",
            "s10",
            "shared-pc",
            "203.0.113.7",
            100.0,
            None,
        ));
        ev.push(act(
            "login",
            "u1",
            "s11",
            "shared-pc",
            "203.0.113.7",
            200.0,
            None,
        ));
        let out = run(&ev);
        assert!(out.flags.is_empty(), "{:?}", out.flags);
        let devices: Vec<&str> = out
            .features
            .column("device_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        let mut names: Vec<String> = (0..10).map(|i| format!("pc{i}")).collect();
        names.push("shared-pc".into());
        names.sort();
        assert_eq!(devices, names);
        // The same device on two different days is two device-days of one account each, in day
        // order.
        let out = run(&[
            checkin("u3", "c1", "phone-1", 2.0 * 86_400.0),
            checkin("u1", "c1", "phone-1", 0.0),
            checkin("u2", "c1", "phone-1", 86_400.0),
        ]);
        assert!(out.flags.is_empty());
        let days = out.features.column("day").unwrap().i64().unwrap();
        let d0 = T0_US.div_euclid(86_400_000_000);
        assert_eq!(
            days.into_no_null_iter().collect::<Vec<_>>(),
            [d0, d0 + 1, d0 + 2]
        );
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let ev: Vec<String> = (0..5)
            .map(|i| checkin(&format!("u{i}"), "c1", "phone-1", i as f64))
            .collect();
        let a = run(&ev);
        assert_eq!(a.flags.len(), 5);
        assert_eq!(a.flags, run(&shuffle_with_duplicates(&ev)).flags);
    }
}

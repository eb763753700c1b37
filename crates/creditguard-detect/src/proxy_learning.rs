//! `proxy_learning` (代学): a colleague does a learner's courses on the colleague's own device.
//!
//! Measurements (`features/proxy_learning`), one row per account × device × day with activity on
//! the device, for the devices that two or more accounts used in the events read (a device only
//! one account uses can support neither rule, and most devices are one person's): `play_s` (heartbeat intervals that play, each capped at `max_gap_s`), `first_t`,
//! `last_t`, `courses`, the account's `days_on_device` over the events read, the device's usual
//! account (`owner`, the account with the most days on it) and `owner_days`, and `switches`:
//! how often the device changed hands between sessions that day. A day here is a day of the
//! business time zone (`time_zone`) that starts at `day_starts_at_hour` local (05:00): an
//! evening that runs past midnight is one day, wherever the UTC midnight falls in it.
//!
//! Rules (devices on the allowlist of known shared devices, such as training-room PCs and
//! kiosks, are never evidence):
//! - `borrowed_device`: an account plays at least `min_play_s` in a day on a device that is
//!   another account's usual one (used on at least `owner_min_days` days), and uses that device on
//!   no more than `guest_max_days` days itself: the learner never uses that device otherwise.
//! - `alternating_accounts`: the device changes hands between the same two accounts at least
//!   `alternating_min_switches` times within a day (A, B, A…), on at least
//!   `alternating_min_days` days; the account that is not the device's usual one is flagged.
//!
//! Neither rule counts a day on which the device was on the learner's own household's address:
//! one the learner also uses from their own other devices and that at most
//! `household_max_accounts` accounts use. Spouses or flatmates who hand one tablet back and forth
//! in an evening do so at home, where each also uses their own phone or laptop; a colleague's
//! laptop sits at the colleague's address, which the learner's own devices never use. An
//! office's address is shared by many accounts and exempts nothing. Feature `address_accounts`
//! (null unless the device was on one of the learner's own addresses).

use std::collections::HashSet;

use polars::prelude::*;
use serde_json::json;

use crate::config::ProxyLearningConfig;
use creditguard_contract::time::format_day;

use crate::events::{same_as_next, same_as_prev, secs, sort_opts, type_in};
use crate::flags::{date, dur, dur_zh, hhmm, r3, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// Event types that show an account using a device.
pub const USE_TYPES: [&str; 5] = [
    "login",
    "heartbeat",
    "video_play",
    "course_enter",
    "quiz_submit",
];

/// The `proxy_learning` job over the events; `shared_devices` are the known shared devices.
pub fn detect(
    events: LazyFrame,
    cfg: &ProxyLearningConfig,
    shared_devices: &HashSet<String>,
) -> Result<JobOutput> {
    let all = device_events(events, cfg, shared_devices)?.collect()?;
    // Both rules need a device that two accounts used: the rest (most devices are one person's)
    // is measured no further, which spares sorting every event by device.
    // A filter, not a join: the events keep their order, which decides ties in time.
    let devices = devices_of_two_or_more(all.clone().lazy()).collect()?;
    let shared_by_two = all.clone().lazy().filter(
        col("device_id").is_in(
            lit(devices
                .column("device_id")?
                .as_materialized_series()
                .clone())
            .implode(false),
            false,
        ),
    );
    let uses = with_hands(shared_by_two, cfg).collect()?;
    let (addresses, accounts_per_address) = addresses_of(all.lazy(), &uses);
    let features = with_household(
        account_device_days(uses.lazy()),
        addresses,
        accounts_per_address,
    )
    .collect()?;
    let mut flags = borrowed_flags(&features, cfg)?;
    flags.extend(alternating_flags(&features, cfg)?);
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

/// The events that show an account on a device not on the allowlist, with their `day`.
fn device_events(
    events: LazyFrame,
    cfg: &ProxyLearningConfig,
    shared_devices: &HashSet<String>,
) -> Result<LazyFrame> {
    let shift = cfg
        .day_shift_us()
        .map_err(|e| crate::Error::Config(vec![format!("key `jobs.proxy_learning`: {e}")]))?;
    let allow: Vec<&str> = shared_devices.iter().map(String::as_str).collect();
    let listed = if allow.is_empty() {
        lit(false)
    } else {
        col("device_id").is_in(
            lit(Series::new("allow".into(), allow)).implode(false),
            false,
        )
    };
    Ok(events
        .filter(
            type_in(&USE_TYPES)
                .and(col("device_id").is_not_null())
                .and(listed.not()),
        )
        .select([
            col("device_id"),
            col("user_id"),
            col("org_unit"),
            col("session_id"),
            col("ip"),
            col("course_id"),
            col("event_type"),
            col("playing"),
            col("t"),
            (col("t") + lit(shift))
                .floor_div(lit(crate::DAY_US))
                .alias("day"),
        ]))
}

/// The devices (`device_id`) that at least two accounts used.
fn devices_of_two_or_more(uses: LazyFrame) -> LazyFrame {
    uses.select([col("device_id"), col("user_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .group_by([col("device_id")])
        .agg([len().alias("_accounts")])
        .filter(col("_accounts").gt(lit(1)))
        .select([col("device_id")])
}

/// The device's events in order, with `_play_s` (the playing interval after a heartbeat,
/// capped at `max_gap_s`) and `_new_hand` (the device changed account).
fn with_hands(uses: LazyFrame, cfg: &ProxyLearningConfig) -> LazyFrame {
    let next_gap = secs(col("t").shift(lit(-1)) - col("t"));
    let capped_gap = when(next_gap.clone().gt(lit(cfg.max_gap_s)))
        .then(lit(cfg.max_gap_s))
        .otherwise(next_gap);
    let playing_beat = col("event_type")
        .eq(lit("heartbeat"))
        .and(col("playing").fill_null(lit(false)));
    uses.sort(["device_id", "t", "user_id"], sort_opts())
        .with_columns([
            when(playing_beat.and(same_as_next(&["device_id", "user_id", "session_id"])))
                .then(capped_gap)
                .otherwise(lit(0.0))
                .alias("_play_s"),
            (same_as_prev(&["device_id", "day"]).and(
                col("user_id")
                    .neq(col("user_id").shift(lit(1)))
                    .fill_null(lit(false)),
            ))
            .alias("_new_hand"),
        ])
}

/// For the accounts in `uses`: their (`user_id`, `device_id`, `day`, `ip`) over all their
/// devices in `all`, and for each of those addresses how many accounts of `all` used it.
fn addresses_of(all: LazyFrame, uses: &DataFrame) -> (LazyFrame, LazyFrame) {
    let with_ip = all.filter(col("ip").is_not_null());
    let accounts = uses
        .clone()
        .lazy()
        .select([col("user_id")])
        .unique(None, UniqueKeepStrategy::Any);
    let addresses = with_ip
        .clone()
        .join(
            accounts,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Semi),
        )
        .select([col("user_id"), col("device_id"), col("day"), col("ip")])
        .unique(None, UniqueKeepStrategy::Any)
        .cache();
    let their_ips = addresses
        .clone()
        .select([col("ip")])
        .unique(None, UniqueKeepStrategy::Any);
    let accounts_per_address = with_ip
        .join(
            their_ips,
            [col("ip")],
            [col("ip")],
            JoinArgs::new(JoinType::Semi),
        )
        .select([col("ip"), col("user_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .group_by([col("ip")])
        .agg([len().cast(DataType::Int64).alias("address_accounts")]);
    (addresses, accounts_per_address)
}

/// One row per account × device × day (see the module docs).
fn account_device_days(uses: LazyFrame) -> LazyFrame {
    let per_day = uses
        .clone()
        .group_by([col("user_id"), col("device_id"), col("day")])
        .agg([
            col("org_unit").first(),
            col("t").min().alias("first_t"),
            col("t").max().alias("last_t"),
            col("_play_s").sum().alias("play_s"),
            col("course_id")
                .filter(col("course_id").is_not_null())
                .unique_stable()
                .head(Some(10))
                .implode(true)
                .alias("courses"),
        ]);
    let switches = uses.clone().group_by([col("device_id"), col("day")]).agg([
        col("_new_hand")
            .sum()
            .cast(DataType::Int64)
            .alias("switches"),
        col("user_id")
            .n_unique()
            .cast(DataType::Int64)
            .alias("accounts_day"),
    ]);
    let days_on = per_day
        .clone()
        .group_by([col("user_id"), col("device_id")])
        .agg([len().cast(DataType::Int64).alias("days_on_device")]);
    let owners = days_on
        .clone()
        .sort_by_exprs(
            [col("device_id"), col("days_on_device"), col("user_id")],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true, false])
                .with_maintain_order(true),
        )
        .group_by_stable([col("device_id")])
        .agg([
            col("user_id").first().alias("owner"),
            col("days_on_device").first().alias("owner_days"),
            len().cast(DataType::Int64).alias("device_accounts"),
        ]);
    per_day
        .join(
            days_on,
            [col("user_id"), col("device_id")],
            [col("user_id"), col("device_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            owners,
            [col("device_id")],
            [col("device_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            switches,
            [col("device_id"), col("day")],
            [col("device_id"), col("day")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["day", "device_id", "user_id"], sort_opts())
}

/// Adds `address_accounts`: when the row's device was on an address the account also used from
/// another device of its own, how many accounts used that address (the fewest over such
/// addresses); null otherwise. `addresses` holds (`user_id`, `device_id`, `day`, `ip`),
/// `accounts_per_address` (`ip`, `address_accounts`).
fn with_household(
    features: LazyFrame,
    addresses: LazyFrame,
    accounts_per_address: LazyFrame,
) -> LazyFrame {
    let own_devices = addresses
        .clone()
        .select([
            col("user_id"),
            col("ip"),
            col("device_id").alias("_other_device"),
        ])
        .unique(None, UniqueKeepStrategy::Any);
    let home = addresses
        .join(
            own_devices,
            [col("user_id"), col("ip")],
            [col("user_id"), col("ip")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("_other_device").neq(col("device_id")))
        .join(
            accounts_per_address,
            [col("ip")],
            [col("ip")],
            JoinArgs::new(JoinType::Left),
        )
        .group_by([col("user_id"), col("device_id"), col("day")])
        .agg([col("address_accounts").min()]);
    features
        .join(
            home,
            [col("user_id"), col("device_id"), col("day")],
            [col("user_id"), col("device_id"), col("day")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["day", "device_id", "user_id"], sort_opts())
}

/// What one account-device-day row says, for its flags.
struct Use {
    user_id: String,
    org_unit: Option<String>,
    device_id: String,
    day: i64,
    first_t: i64,
    last_t: i64,
    play_s: f64,
    courses: Vec<String>,
    days_on_device: i64,
    owner: String,
    owner_days: i64,
    switches: i64,
    accounts_day: i64,
    /// Accounts using the address the device was on, when it was one of the learner's own.
    address_accounts: Option<i64>,
}

fn use_rows(df: &DataFrame) -> Result<Vec<Use>> {
    let r = Rows(df);
    let (user, org, device, owner) = (
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("device_id")?,
        r.str("owner")?,
    );
    let (day, first, last, play) = (
        r.i64("day")?,
        r.i64("first_t")?,
        r.i64("last_t")?,
        r.f64("play_s")?,
    );
    let (days_on, owner_days, switches, accounts) = (
        r.i64("days_on_device")?,
        r.i64("owner_days")?,
        r.i64("switches")?,
        r.i64("accounts_day")?,
    );
    let courses = r.list("courses")?;
    let address_accounts = r.i64("address_accounts")?;
    Ok((0..r.len())
        .map(|i| Use {
            user_id: user.get(i).unwrap_or_default().to_string(),
            org_unit: org.get(i).map(str::to_string),
            device_id: device.get(i).unwrap_or_default().to_string(),
            day: day.get(i).unwrap_or(0),
            first_t: first.get(i).unwrap_or(0),
            last_t: last.get(i).unwrap_or(0),
            play_s: play.get(i).unwrap_or(0.0),
            courses: crate::flags::list_strings(courses, i),
            days_on_device: days_on.get(i).unwrap_or(0),
            owner: owner.get(i).unwrap_or_default().to_string(),
            owner_days: owner_days.get(i).unwrap_or(0),
            switches: switches.get(i).unwrap_or(0),
            accounts_day: accounts.get(i).unwrap_or(0),
            address_accounts: address_accounts.get(i),
        })
        .collect())
}

impl Use {
    fn is_guest(&self, cfg: &ProxyLearningConfig) -> bool {
        self.owner != self.user_id
            && self.owner_days >= i64::from(cfg.owner_min_days)
            && self.days_on_device <= i64::from(cfg.guest_max_days)
            && !self.at_home(cfg)
    }

    /// The device was on an address of the learner's own household.
    fn at_home(&self, cfg: &ProxyLearningConfig) -> bool {
        self.address_accounts
            .is_some_and(|n| n <= i64::from(cfg.household_max_accounts))
    }

    fn draft(&self, rule: &'static str, severity: f64, evidence: serde_json::Value) -> Draft {
        Draft {
            rule,
            user_id: self.user_id.clone(),
            org_unit: self.org_unit.clone(),
            course_id: None,
            window_start: self.first_t,
            window_end: self.last_t,
            severity,
            key: self.device_id.clone(),
            evidence: evidence.as_object().cloned().unwrap_or_default(),
            en: String::new(),
            zh: String::new(),
        }
    }
}

fn borrowed_flags(
    df: &DataFrame,
    cfg: &ProxyLearningConfig,
) -> Result<Vec<creditguard_contract::Flag>> {
    let mut flags = Vec::new();
    for u in use_rows(df)? {
        if !(u.is_guest(cfg) && u.play_s >= cfg.min_play_s) {
            continue;
        }
        let mut d = u.draft(
            "proxy_learning.borrowed_device",
            0.6,
            json!({
                "device_id": u.device_id, "day": date(u.first_t), "play_s": r3(u.play_s),
                "courses": u.courses, "days_on_device": u.days_on_device,
                "device_owner": u.owner, "owner_days": u.owner_days,
                "threshold_min_play_s": cfg.min_play_s,
                "threshold_owner_min_days": cfg.owner_min_days,
                "threshold_guest_max_days": cfg.guest_max_days,
                "accounts_on_own_address": u.address_accounts,
                "threshold_household_max_accounts": cfg.household_max_accounts,
            }),
        );
        let courses = u.courses.join(", ");
        d.en = format!(
            "On {} from {} to {} this account played {} of courses ({courses}) on device {}, which is the usual device of account {} ({} days on it); this account used that device on only {} day(s) (at most {} is flagged).",
            date(u.first_t), hhmm(u.first_t), hhmm(u.last_t), dur(u.play_s), u.device_id, u.owner,
            u.owner_days, u.days_on_device, cfg.guest_max_days
        );
        d.zh = format!(
            "{} {} 至 {}，该账号在设备 {} 上播放课程（{courses}）共 {}，而该设备是账号 {} 的常用设备（使用 {} 天）；该账号仅有 {} 天使用过这台设备（不超过 {} 天即标记）。",
            date(u.first_t), hhmm(u.first_t), hhmm(u.last_t), u.device_id, dur_zh(u.play_s), u.owner,
            u.owner_days, u.days_on_device, cfg.guest_max_days
        );
        flags.push(d.finish());
    }
    Ok(flags)
}

fn alternating_flags(
    df: &DataFrame,
    cfg: &ProxyLearningConfig,
) -> Result<Vec<creditguard_contract::Flag>> {
    let rows = use_rows(df)?;
    let alternates = |u: &Use| {
        u.accounts_day == 2
            && u.switches >= i64::from(cfg.alternating_min_switches)
            && !u.at_home(cfg)
    };
    // Days per (device, account) on which the device alternated between two accounts.
    let mut days: std::collections::BTreeMap<(&str, &str), Vec<&Use>> = Default::default();
    for u in rows
        .iter()
        .filter(|u| alternates(u) && u.owner != u.user_id)
    {
        days.entry((u.device_id.as_str(), u.user_id.as_str()))
            .or_default()
            .push(u);
    }
    let mut flags = Vec::new();
    for uses in days.values() {
        if uses.len() < cfg.alternating_min_days as usize {
            continue;
        }
        let (first, last) = (uses[0], uses[uses.len() - 1]);
        let day_list: Vec<String> = uses.iter().map(|u| format_day(u.day)).collect();
        let mut d = first.draft(
            "proxy_learning.alternating_accounts",
            0.6,
            json!({
                "device_id": first.device_id, "device_owner": first.owner,
                "days": day_list, "switches_per_day": uses.iter().map(|u| u.switches).collect::<Vec<_>>(),
                "threshold_alternating_min_switches": cfg.alternating_min_switches,
                "threshold_alternating_min_days": cfg.alternating_min_days,
                "time_zone": cfg.time_zone, "day_starts_at_hour": cfg.day_starts_at_hour,
            }),
        );
        d.window_end = last.last_t;
        d.key = format!("{}\u{1f}{}", first.device_id, first.day);
        d.en = format!(
            "On {} days ({}; days of {} from {:02}:00) device {} changed hands back and forth between this account and account {} (its usual user) {} or more times a day (at least {} times a day on {} days is flagged).",
            uses.len(), day_list.join(", "), cfg.time_zone, cfg.day_starts_at_hour, first.device_id, first.owner,
            uses.iter().map(|u| u.switches).min().unwrap_or(0), cfg.alternating_min_switches, cfg.alternating_min_days
        );
        d.zh = format!(
            "共 {} 天（{}；按 {} 时区、每天从 {:02}:00 起算）设备 {} 在该账号与账号 {}（该设备的常用账号）之间来回切换，每天至少 {} 次（每天至少 {} 次、达到 {} 天即标记）。",
            uses.len(), day_list.join("、"), cfg.time_zone, cfg.day_starts_at_hour, first.device_id, first.owner,
            uses.iter().map(|u| u.switches).min().unwrap_or(0), cfg.alternating_min_switches, cfg.alternating_min_days
        );
        flags.push(d.finish());
    }
    Ok(flags)
}

#[cfg(test)]
mod tests;

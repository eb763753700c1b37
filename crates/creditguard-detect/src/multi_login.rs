//! `multi_login`: one account used in two places at once.
//!
//! A session's *active segments* run from event to event while they are at most `idle_gap_s`
//! apart (an idle tab left open is not active). Features (`features/multi_login`), one row per
//! segment: user, session, device, address, start, end, events.
//!
//! - `concurrent_sessions`: two segments of different sessions of one user, on different devices
//!   (and, by default, different networks), overlapping ≥ `min_overlap_s`. Segments are swept in
//!   start order against the longest-running earlier segment, so the cost is a sort, not a
//!   self-join. One flag per pair of sessions and day. Using two devices one after the other
//!   never overlaps and is never flagged.
//! - `impossible_travel`: consecutive located events of a user whose distance (≥
//!   `min_distance_km`) over the time between them is faster than `max_speed_kmh`. One flag per
//!   user and day, with the fastest jump.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde_json::json;

use crate::config::MultiLoginConfig;
use crate::events::{day_of, overlap_sweep, same_as_prev, sort_opts};
use crate::explain;
use crate::flags::{r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// Active segments of sessions (see the module docs).
pub fn segments(events: LazyFrame, cfg: &MultiLoginConfig) -> LazyFrame {
    let idle_us = (cfg.idle_gap_s * 1e6) as i64;
    events
        .filter(col("session_id").is_not_null())
        .select([
            col("user_id"),
            col("org_unit"),
            col("session_id"),
            col("device_id"),
            col("ip"),
            col("t"),
            col("event_id"),
        ])
        .sort(["user_id", "session_id", "t", "event_id"], sort_opts())
        .with_column(
            same_as_prev(&["user_id", "session_id"])
                .and((col("t") - col("t").shift(lit(1))).lt_eq(lit(idle_us)))
                .fill_null(lit(false))
                .not()
                .cast(DataType::UInt32)
                .cum_sum(false)
                .alias("_seg"),
        )
        .group_by([col("_seg")])
        .agg([
            col("user_id").first(),
            col("org_unit").drop_nulls().first(),
            col("session_id").first(),
            col("device_id").drop_nulls().first(),
            col("ip").drop_nulls().first(),
            col("t").min().alias("start"),
            col("t").max().alias("end"),
            len().cast(DataType::Int64).alias("events"),
        ])
        .drop(cols(["_seg"]))
        .with_column(day_of(col("start")).alias("day"))
        .sort(["user_id", "start", "session_id"], sort_opts())
}

/// The network of an address: IPv4 /24, IPv6 /48, or the network pseudonym ingest stored in its
/// place (`[privacy]`), which already stands for its network; `None` when unknown.
fn network(ip: Option<&str>) -> Option<String> {
    creditguard_contract::privacy::network_key(ip?).map(std::borrow::Cow::into_owned)
}

/// Great-circle distance in km.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

/// The `multi_login` job over the events.
pub fn detect(events: LazyFrame, cfg: &MultiLoginConfig) -> Result<JobOutput> {
    let features = segments(events.clone(), cfg).collect()?;
    let mut drafts = Vec::new();
    concurrent(&features, cfg, &mut drafts)?;
    travel(events, cfg, &mut drafts)?;
    let mut flags: Vec<_> = drafts.into_iter().map(Draft::finish).collect();
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

/// `concurrent_sessions`: overlapping segments of two sessions on different devices.
fn concurrent(segments: &DataFrame, cfg: &MultiLoginConfig, out: &mut Vec<Draft>) -> Result<()> {
    let pairs = overlapping_sessions(segments)?.collect()?;
    let per_day = session_pairs(&pairs, cfg)?;
    concurrent_flags(per_day, cfg, out);
    Ok(())
}

/// Sweep: in start order, each segment against the earlier segment of the user that ends last;
/// the overlaps of two sessions on two known, different devices.
fn overlapping_sessions(segments: &DataFrame) -> Result<LazyFrame> {
    Ok(overlap_sweep(
        segments.clone().lazy(),
        "user_id",
        &[
            ("session_id", "o_session"),
            ("device_id", "o_device"),
            ("ip", "o_ip"),
        ],
    )?
    .filter(
        col("o_session")
            .is_not_null()
            .and(col("o_session").neq(col("session_id")))
            .and(col("device_id").is_not_null())
            .and(col("o_device").is_not_null())
            .and(col("device_id").neq(col("o_device"))),
    ))
}

/// Two sessions of a user overlapping on one day (the day of the overlap's start), sessions in
/// id order with their devices, addresses and networks in the same order.
#[derive(Default)]
struct SessionPair {
    org: Option<String>,
    overlap_us: i64,
    first: i64,
    last: i64,
    devices: [String; 2],
    ips: [Option<String>; 2],
    networks: [Option<String>; 2],
}

type SessionPairs = BTreeMap<(String, String, String, i64), SessionPair>;

/// Sums the overlaps per user, session pair and day; with `require_different_network`, pairs on
/// one network are left out.
fn session_pairs(pairs: &DataFrame, cfg: &MultiLoginConfig) -> Result<SessionPairs> {
    let r = Rows(pairs);
    let (user, org, s, os, d, od, ip, oip) = (
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("session_id")?,
        r.str("o_session")?,
        r.str("device_id")?,
        r.str("o_device")?,
        r.str("ip")?,
        r.str("o_ip")?,
    );
    let (start, end, o_end, ov) = (
        r.i64("start")?,
        r.i64("end")?,
        r.i64("o_end")?,
        r.i64("overlap_us")?,
    );
    let mut acc = SessionPairs::new();
    for i in 0..r.len() {
        let (ip_a, ip_b) = (ip.get(i), oip.get(i));
        let (net_a, net_b) = (network(ip_a), network(ip_b));
        if cfg.require_different_network {
            if let (Some(a), Some(b)) = (&net_a, &net_b) {
                if a == b {
                    continue;
                }
            }
        }
        let (sa, sb) = (s.get(i).unwrap_or_default(), os.get(i).unwrap_or_default());
        let ws = start.get(i).unwrap_or(0);
        let we = end.get(i).unwrap_or(0).min(o_end.get(i).unwrap_or(0));
        let (lo, hi, flip) = if sa <= sb {
            (sa, sb, false)
        } else {
            (sb, sa, true)
        };
        let day = ws.div_euclid(crate::DAY_US);
        let e = acc
            .entry((
                user.get(i).unwrap_or_default().to_string(),
                lo.to_string(),
                hi.to_string(),
                day,
            ))
            .or_insert_with(|| SessionPair {
                first: ws,
                last: we,
                ..Default::default()
            });
        e.org = org.get(i).map(str::to_string);
        e.overlap_us += ov.get(i).unwrap_or(0);
        e.first = e.first.min(ws);
        e.last = e.last.max(we);
        let mut devs = [
            d.get(i).unwrap_or_default().to_string(),
            od.get(i).unwrap_or_default().to_string(),
        ];
        let mut ips = [ip_a.map(str::to_string), ip_b.map(str::to_string)];
        let mut nets = [net_a, net_b];
        if flip {
            devs.swap(0, 1);
            ips.swap(0, 1);
            nets.swap(0, 1);
        }
        e.devices = devs;
        e.ips = ips;
        e.networks = nets;
    }
    Ok(acc)
}

/// A flag per session pair and day past `min_overlap_s`.
fn concurrent_flags(acc: SessionPairs, cfg: &MultiLoginConfig, out: &mut Vec<Draft>) {
    for ((u, sa, sb, _day), a) in acc {
        let overlap_s = a.overlap_us as f64 / 1e6;
        if overlap_s < cfg.min_overlap_s {
            continue;
        }
        let [da, db] = &a.devices;
        let text = explain::concurrent_sessions(
            &explain::ConcurrentSessions {
                sessions: [&sa, &sb],
                devices: [da, db],
                overlap_s,
                start: a.first,
                end: a.last,
            },
            cfg,
        );
        out.push(Draft {
            rule: "multi_login.concurrent_sessions",
            user_id: u,
            org_unit: a.org,
            course_id: None,
            window_start: a.first,
            window_end: a.last,
            severity: ramp((overlap_s - cfg.min_overlap_s) / (30.0 * cfg.min_overlap_s)),
            key: format!("{sa}\u{1f}{sb}"),
            evidence: json!({
                "overlap_s": r3(overlap_s), "sessions": [sa, sb], "devices": a.devices, "ips": a.ips,
                "networks": a.networks, "threshold_s": cfg.min_overlap_s,
                "require_different_network": cfg.require_different_network,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: text.en,
            zh: text.zh,
        });
    }
}

/// `impossible_travel`: consecutive places of a learner too far apart for the time between them.
fn travel(events: LazyFrame, cfg: &MultiLoginConfig, out: &mut Vec<Draft>) -> Result<()> {
    let moves = location_changes(events).collect()?;
    let per_day = fast_hops(&moves, cfg)?;
    travel_flags(per_day, cfg, out);
    Ok(())
}

/// The events where a learner's place changes, with the previous place, time and address
/// (`p_lat`, `p_lon`, `p_t`, `p_ip`). Everything else is dropped in polars.
fn location_changes(events: LazyFrame) -> LazyFrame {
    events
        .filter(
            col("geo_lat")
                .is_not_null()
                .and(col("geo_lon").is_not_null()),
        )
        .select([
            col("user_id"),
            col("org_unit"),
            col("t"),
            col("event_id"),
            col("geo_lat"),
            col("geo_lon"),
            col("ip"),
        ])
        .sort(["user_id", "t", "event_id"], sort_opts())
        .with_columns([
            same_as_prev(&["user_id"]).alias("_same"),
            col("geo_lat").shift(lit(1)).alias("p_lat"),
            col("geo_lon").shift(lit(1)).alias("p_lon"),
            col("t").shift(lit(1)).alias("p_t"),
            col("ip").shift(lit(1)).alias("p_ip"),
        ])
        .filter(
            col("_same").and(
                col("geo_lat")
                    .neq(col("p_lat"))
                    .or(col("geo_lon").neq(col("p_lon"))),
            ),
        )
}

/// A learner's day of jumps faster than `max_speed_kmh`, by its fastest.
struct TravelDay {
    org: Option<String>,
    hops: u32,
    first: i64,
    last: i64,
    worst_kmh: f64,
    worst: serde_json::Value,
    worst_km: f64,
    worst_s: f64,
}

/// The jumps of [`location_changes`] over `min_distance_km` and faster than `max_speed_kmh`,
/// per learner and day.
fn fast_hops(
    moves: &DataFrame,
    cfg: &MultiLoginConfig,
) -> Result<BTreeMap<(String, i64), TravelDay>> {
    let r = Rows(moves);
    let (user, org, ip, pip) = (
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("ip")?,
        r.str("p_ip")?,
    );
    let (t, pt) = (r.i64("t")?, r.i64("p_t")?);
    let (lat, lon, plat, plon) = (
        r.f64("geo_lat")?,
        r.f64("geo_lon")?,
        r.f64("p_lat")?,
        r.f64("p_lon")?,
    );
    let mut per_day: BTreeMap<(String, i64), TravelDay> = BTreeMap::new();
    for i in 0..r.len() {
        let (Some(a), Some(b), Some(c), Some(d)) =
            (plat.get(i), plon.get(i), lat.get(i), lon.get(i))
        else {
            continue;
        };
        let km = haversine_km(a, b, c, d);
        if km < cfg.min_distance_km {
            continue;
        }
        let (t0, t1) = (pt.get(i).unwrap_or(0), t.get(i).unwrap_or(0));
        let secs_between = ((t1 - t0) as f64 / 1e6).max(cfg.min_interval_s);
        let kmh = km / (secs_between / 3600.0);
        if kmh <= cfg.max_speed_kmh {
            continue;
        }
        let u = user.get(i).unwrap_or_default().to_string();
        let e = per_day
            .entry((u, t0.div_euclid(crate::DAY_US)))
            .or_insert(TravelDay {
                org: org.get(i).map(str::to_string),
                hops: 0,
                first: t0,
                last: t1,
                worst_kmh: 0.0,
                worst: serde_json::Value::Null,
                worst_km: 0.0,
                worst_s: 0.0,
            });
        e.hops += 1;
        e.first = e.first.min(t0);
        e.last = e.last.max(t1);
        if kmh > e.worst_kmh {
            e.worst_kmh = kmh;
            e.worst_km = km;
            e.worst_s = (t1 - t0) as f64 / 1e6;
            e.worst = json!({
                "from": {"lat": a, "lon": b, "ip": pip.get(i), "ts": creditguard_contract::time::format_rfc3339_us(t0)},
                "to": {"lat": c, "lon": d, "ip": ip.get(i), "ts": creditguard_contract::time::format_rfc3339_us(t1)},
            });
        }
    }
    Ok(per_day)
}

/// A flag per learner and day of [`fast_hops`].
fn travel_flags(
    per_day: BTreeMap<(String, i64), TravelDay>,
    cfg: &MultiLoginConfig,
    out: &mut Vec<Draft>,
) {
    for ((u, _day), h) in per_day {
        let text = explain::impossible_travel(
            &explain::ImpossibleTravel {
                day_start: h.first,
                hops: i64::from(h.hops),
                fastest_km: h.worst_km,
                fastest_s: h.worst_s,
                fastest_kmh: h.worst_kmh,
            },
            cfg,
        );
        out.push(Draft {
            rule: "multi_login.impossible_travel",
            user_id: u,
            org_unit: h.org,
            course_id: None,
            window_start: h.first,
            window_end: h.last,
            severity: ramp((h.worst_kmh - cfg.max_speed_kmh) / (4.0 * cfg.max_speed_kmh)),
            key: String::new(),
            evidence: json!({
                "hops": h.hops, "max_speed_kmh": r3(h.worst_kmh), "distance_km": r3(h.worst_km),
                "seconds_between": r3(h.worst_s), "fastest_hop": h.worst,
                "threshold_kmh": cfg.max_speed_kmh, "min_distance_km": cfg.min_distance_km,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: text.en,
            zh: text.zh,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn run(ev: &[String]) -> JobOutput {
        detect(frame(ev).lazy(), &MultiLoginConfig::default()).unwrap()
    }

    /// Events of one session every `step` s from `t0` to `t1`.
    fn session(
        u: &str,
        s: &str,
        dev: &str,
        ip: &str,
        t0: f64,
        t1: f64,
        step: f64,
        geo: Option<(f64, f64)>,
    ) -> Vec<String> {
        let mut v = vec![act("login", u, s, dev, ip, t0, geo)];
        let mut t = t0 + step;
        while t <= t1 {
            v.push(act("course_enter", u, s, dev, ip, t, geo));
            t += step;
        }
        v
    }

    const BEIJING: (f64, f64) = (39.9, 116.4);
    const SHANGHAI: (f64, f64) = (31.2, 121.5);

    #[test]
    fn two_devices_at_once_fire_and_one_after_the_other_does_not() {
        let mut ev = session("u1", "s1", "laptop", "10.1.1.5", 0.0, 1800.0, 60.0, None);
        ev.extend(session(
            "u1",
            "s2",
            "phone",
            "172.16.4.4",
            600.0,
            1200.0,
            60.0,
            None,
        ));
        let out = run(&ev);
        assert_eq!(rules(&out.flags), ["multi_login.concurrent_sessions"]);
        assert!(
            out.flags[0].evidence.contains("\"overlap_s\":600.0"),
            "{}",
            out.flags[0].evidence
        );
        // Sequential: laptop until 1800, phone from 1830.
        let mut ev = session("u2", "s1", "laptop", "10.1.1.5", 0.0, 1800.0, 60.0, None);
        ev.extend(session(
            "u2",
            "s2",
            "phone",
            "172.16.4.4",
            1830.0,
            3600.0,
            60.0,
            None,
        ));
        assert!(run(&ev).flags.is_empty());
    }

    #[test]
    fn overlap_boundary_idle_tabs_and_one_network() {
        // 60 s overlap fires, 59 s does not.
        for (gap, fires) in [(60.0, true), (59.0, false)] {
            let mut ev = session("u1", "s1", "laptop", "10.1.1.5", 0.0, 600.0, 30.0, None);
            ev.extend(session(
                "u1",
                "s2",
                "phone",
                "172.16.4.4",
                600.0 - gap,
                1200.0,
                30.0,
                None,
            ));
            assert_eq!(!run(&ev).flags.is_empty(), fires, "overlap {gap}");
        }
        // A tab left open (one event at 0 and one at 3000) does not make the session active meanwhile.
        let mut ev = vec![
            act("login", "u1", "s1", "laptop", "10.1.1.5", 0.0, None),
            act("logout", "u1", "s1", "laptop", "10.1.1.5", 3000.0, None),
        ];
        ev.extend(session(
            "u1",
            "s2",
            "phone",
            "172.16.4.4",
            600.0,
            1200.0,
            60.0,
            None,
        ));
        assert!(run(&ev).flags.is_empty());
        // Laptop and phone on the same home network at once: not flagged by default.
        let mut ev = session(
            "u1",
            "s1",
            "laptop",
            "192.168.1.10",
            0.0,
            1800.0,
            60.0,
            None,
        );
        ev.extend(session(
            "u1",
            "s2",
            "phone",
            "192.168.1.11",
            600.0,
            1200.0,
            60.0,
            None,
        ));
        assert!(run(&ev).flags.is_empty());
    }

    #[test]
    fn network_pseudonyms_compare_as_their_networks() {
        let p = creditguard_contract::privacy::Pseudonymiser::new(&[4u8; 32]);
        let net = |ip: &str| p.network(ip).unwrap();
        // Two devices on one /24, stored as pseudonyms: one network, not flagged.
        let mut ev = session(
            "u1",
            "s1",
            "laptop",
            &net("192.168.1.10"),
            0.0,
            1800.0,
            60.0,
            None,
        );
        ev.extend(session(
            "u1",
            "s2",
            "phone",
            &net("192.168.1.11"),
            600.0,
            1200.0,
            60.0,
            None,
        ));
        assert!(run(&ev).flags.is_empty());
        // Two networks: flagged, and the evidence names pseudonyms only.
        let mut ev = session(
            "u1",
            "s1",
            "laptop",
            &net("10.1.1.5"),
            0.0,
            600.0,
            30.0,
            None,
        );
        ev.extend(session(
            "u1",
            "s2",
            "phone",
            &net("172.16.4.4"),
            480.0,
            1200.0,
            30.0,
            None,
        ));
        let out = run(&ev);
        assert_eq!(out.flags.len(), 1);
        let evidence = out.flags[0].evidence.to_string();
        assert!(evidence.contains(&net("10.1.1.5")), "{evidence}");
        assert!(!evidence.contains("10.1.1"), "{evidence}");
    }

    #[test]
    fn impossible_travel_fires_and_a_flight_does_not() {
        // Beijing, then Shanghai (1070 km) 30 minutes later.
        let mut ev = session(
            "u1",
            "s1",
            "laptop",
            "10.1.1.5",
            0.0,
            600.0,
            60.0,
            Some(BEIJING),
        );
        ev.extend(session(
            "u1",
            "s2",
            "laptop",
            "10.9.9.9",
            2400.0,
            3000.0,
            60.0,
            Some(SHANGHAI),
        ));
        let out = run(&ev);
        assert_eq!(rules(&out.flags), ["multi_login.impossible_travel"]);
        assert!(
            out.flags[0]
                .explanation
                .starts_with("Activity 1071 km apart 30.0 min apart"),
            "{}",
            out.flags[0].explanation
        );
        // The same trip in 2.5 hours (≈ 430 km/h).
        let mut ev = session(
            "u2",
            "s1",
            "laptop",
            "10.1.1.5",
            0.0,
            600.0,
            60.0,
            Some(BEIJING),
        );
        ev.extend(session(
            "u2",
            "s2",
            "laptop",
            "10.9.9.9",
            600.0 + 9000.0,
            10800.0,
            60.0,
            Some(SHANGHAI),
        ));
        assert!(run(&ev).flags.is_empty());
        // Geolocation jitter of 50 km within a minute is not travel.
        let mut ev = session(
            "u3",
            "s1",
            "laptop",
            "10.1.1.5",
            0.0,
            60.0,
            60.0,
            Some(BEIJING),
        );
        ev.extend(session(
            "u3",
            "s2",
            "laptop",
            "10.1.1.5",
            90.0,
            120.0,
            60.0,
            Some((40.3, 116.6)),
        ));
        assert!(run(&ev).flags.is_empty());
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let mut ev = session(
            "u1",
            "s1",
            "laptop",
            "10.1.1.5",
            0.0,
            1800.0,
            60.0,
            Some(BEIJING),
        );
        ev.extend(session(
            "u1",
            "s2",
            "phone",
            "172.16.4.4",
            600.0,
            1200.0,
            60.0,
            Some(SHANGHAI),
        ));
        let a = run(&ev);
        assert_eq!(
            rules(&a.flags),
            [
                "multi_login.concurrent_sessions",
                "multi_login.impossible_travel"
            ]
        );
        let b = run(&shuffle_with_duplicates(&ev));
        assert_eq!(a.flags, b.flags);
        assert!(a.features.equals_missing(&b.features));
    }
}

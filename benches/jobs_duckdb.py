#!/usr/bin/env python3
"""The detection jobs' computations written as DuckDB SQL, on the Parquet lake `benches/jobs.rs`
generates, for a side-by-side figure with the polars jobs.

    pip install duckdb
    cargo build --release --workspace --all-targets
    target/release/examples/jobs_bench 10000000 30   # generates target/bench-lake-10000000-30
    python3 benches/jobs_duckdb.py target/bench-lake-10000000-30 [THREADS]

Each of the eight jobs computes what its polars counterpart computes (same keys, same windows, same
thresholds: DESIGN defaults) and materialises its features and candidate flags as tables; the
Rust side additionally formats evidence and explanations for the (few) flags, which is not timed
here. Prints wall time and events/s per stage, flag candidates per rule, and peak RSS.
"""

import resource
import sys
import time

import duckdb

lake = sys.argv[1] if len(sys.argv) > 1 else "target/bench-lake-1000000-30"
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2

con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute("SET preserve_insertion_order = false")

MEDIA = "('heartbeat','video_play','video_pause','video_ended','video_seek','video_rate','visibility')"
DAY = 86_400_000_000
# proxy_learning's days: Asia/Shanghai (+08:00) from 05:00, i.e. 3 hours after the UTC midnight's
# local time (`[jobs.proxy_learning] time_zone`, `day_starts_at_hour`).
PROXY_DAY_SHIFT = (480 - 5 * 60) * 60_000_000

stages = {}


def stage(name, sql):
    t = time.perf_counter()
    for stmt in [s for s in sql.split(";") if s.strip()]:
        con.execute(stmt)
    stages[name] = time.perf_counter() - t


stage(
    "load+dedup",
    f"""
CREATE TABLE ev AS
SELECT DISTINCT ON (event_id) event_id, event_type, epoch_us(ts) AS t, user_id, org_unit, session_id, device_id, ip,
       geo_lat, geo_lon, course_id, lesson_id, position_s, duration_s, playing, visible, muted,
       seek_from_s, seek_to_s, quiz_id, score, max_score, questions, elapsed_s, credits, method,
       answered, response_s, correct, input_events
FROM read_parquet('{lake}/events/*/*.parquet')
""",
)
n_events = con.execute("SELECT count(*) FROM ev").fetchone()[0]

stage(
    "intervals",
    f"""
CREATE TABLE iv AS
WITH m AS (
  SELECT user_id, org_unit, session_id, course_id, lesson_id, t, event_id, event_type, position_s, duration_s,
         playing, visible, muted, seek_from_s, seek_to_s
  FROM ev WHERE event_type IN {MEDIA} AND session_id IS NOT NULL
), f AS (
  SELECT * REPLACE (
    coalesce(course_id, last_value(course_id IGNORE NULLS) OVER w) AS course_id,
    coalesce(lesson_id, last_value(lesson_id IGNORE NULLS) OVER w) AS lesson_id)
  FROM m
  WINDOW w AS (PARTITION BY user_id, session_id ORDER BY t, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), s1 AS (
  SELECT *,
    CASE WHEN event_type = 'video_play' THEN true WHEN event_type IN ('video_pause','video_ended') THEN false
         WHEN event_type = 'heartbeat' THEN playing END AS playing_raw,
    CASE WHEN event_type IN ('heartbeat','visibility') THEN visible END AS visible_raw,
    CASE WHEN event_type = 'heartbeat' THEN muted END AS muted_raw,
    CASE WHEN event_type = 'video_seek' THEN seek_to_s ELSE position_s END AS pos_after,
    CASE WHEN event_type = 'video_seek' THEN seek_from_s ELSE position_s END AS pos_before
  FROM f WHERE lesson_id IS NOT NULL
), s2 AS (
  SELECT *,
    coalesce(last_value(playing_raw IGNORE NULLS) OVER w, false) AS playing_s,
    coalesce(last_value(visible_raw IGNORE NULLS) OVER w, true) AS visible_s,
    coalesce(last_value(muted_raw IGNORE NULLS) OVER w, false) AS muted_s,
    last_value(pos_after IGNORE NULLS) OVER w AS anchor_pos,
    last_value(CASE WHEN pos_after IS NOT NULL THEN t END IGNORE NULLS) OVER w AS anchor_t,
    lead(t) OVER s - t AS dt_us
  FROM s1
  WINDOW w AS (PARTITION BY user_id, session_id, course_id, lesson_id ORDER BY t, event_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
         s AS (PARTITION BY user_id, session_id, course_id, lesson_id ORDER BY t, event_id)
), s3 AS (
  SELECT *,
    lag(anchor_pos) OVER s AS from_pos,
    (t - lag(anchor_t) OVER s) / 1e6 AS wall_s,
    lag(playing_s) OVER s AS was_playing,
    CASE WHEN dt_us IS NULL OR dt_us > 60e6 THEN 0.0 ELSE dt_us / 1e6 END AS dt_s
  FROM s2
  WINDOW s AS (PARTITION BY user_id, session_id, course_id, lesson_id ORDER BY t, event_id)
), s4 AS (
  SELECT *, coalesce(pos_before IS NOT NULL AND from_pos IS NOT NULL AND was_playing AND wall_s > 0 AND wall_s <= 60, false) AS pair
  FROM s3
)
SELECT user_id, org_unit, session_id, course_id, lesson_id, t, t // {DAY} AS day, dt_s,
  CASE WHEN playing_s THEN dt_s ELSE 0 END AS play_s,
  CASE WHEN playing_s AND visible_s AND NOT muted_s THEN dt_s ELSE 0 END AS engaged_s,
  CASE WHEN playing_s AND NOT visible_s THEN dt_s ELSE 0 END AS hidden_s,
  CASE WHEN playing_s AND muted_s THEN dt_s ELSE 0 END AS muted_play_s,
  CASE WHEN pair AND wall_s >= 5 THEN (pos_before - from_pos) / wall_s END AS rate,
  CASE WHEN pair AND wall_s >= 5 AND (pos_before - from_pos) / wall_s > 2.1 THEN wall_s ELSE 0 END AS fast_s,
  CASE WHEN pair AND pos_before > from_pos AND pos_before - from_pos <= wall_s * 2.1 THEN from_pos END AS range_from,
  CASE WHEN pair AND pos_before > from_pos AND pos_before - from_pos <= wall_s * 2.1 THEN pos_before END AS range_to,
  duration_s
FROM s4
""",
)

stage(
    "watch_time",
    """
CREATE TABLE wt_cov AS
WITH r AS (
  SELECT user_id, course_id, lesson_id, day, range_from AS f, range_to AS tt FROM iv WHERE range_from IS NOT NULL
), g AS (
  SELECT *, max(tt) OVER (PARTITION BY user_id, course_id, lesson_id, day ORDER BY f, tt
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max FROM r
), s AS (
  SELECT *, sum(CASE WHEN prev_max IS NULL OR f > prev_max THEN 1 ELSE 0 END)
            OVER (PARTITION BY user_id, course_id, lesson_id, day ORDER BY f, tt ROWS UNBOUNDED PRECEDING) AS seg FROM g
), m AS (
  SELECT user_id, course_id, lesson_id, day, seg, min(f) AS f, max(tt) AS tt FROM s GROUP BY ALL
)
SELECT user_id, course_id, lesson_id, day, sum(tt - f) AS covered_s, list(f ORDER BY f) AS seg_from, list(tt ORDER BY f) AS seg_to
FROM m GROUP BY ALL;
CREATE TABLE wt_features AS
SELECT a.*, coalesce(c.covered_s, 0) AS covered_s, c.seg_from, c.seg_to,
       CASE WHEN a.play_s > 0 THEN a.hidden_s / a.play_s ELSE 0 END AS hidden_share
FROM (SELECT user_id, course_id, lesson_id, day, any_value(org_unit) AS org_unit, sum(play_s) AS play_s,
             sum(engaged_s) AS engaged_s, sum(hidden_s) AS hidden_s, sum(muted_play_s) AS muted_s, sum(fast_s) AS fast_s,
             max(rate) AS max_rate, max(duration_s) AS duration_s, min(t) AS first_t, max(t) AS last_t
      FROM iv GROUP BY user_id, course_id, lesson_id, day) a
LEFT JOIN wt_cov c USING (user_id, course_id, lesson_id, day);
CREATE TABLE wt_flags AS
SELECT 'watch_time.background_playback' AS rule, user_id, course_id, day FROM wt_features
WHERE play_s >= 300 AND hidden_share >= 0.8 GROUP BY ALL
UNION ALL
SELECT 'watch_time.speed', user_id, course_id, day FROM wt_features GROUP BY user_id, course_id, day HAVING sum(fast_s) >= 30;
CREATE TABLE wt_low AS
WITH done AS (SELECT event_id, user_id, course_id, t AS t_done FROM ev WHERE event_type = 'course_complete'),
r AS (SELECT d.event_id, i.lesson_id, i.range_from AS f, i.range_to AS tt FROM done d
      JOIN iv i ON i.user_id = d.user_id AND i.course_id = d.course_id AND i.t <= d.t_done WHERE i.range_from IS NOT NULL),
g AS (SELECT *, max(tt) OVER (PARTITION BY event_id, lesson_id ORDER BY f, tt ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS pm FROM r),
s AS (SELECT *, sum(CASE WHEN pm IS NULL OR f > pm THEN 1 ELSE 0 END) OVER (PARTITION BY event_id, lesson_id ORDER BY f, tt ROWS UNBOUNDED PRECEDING) AS seg FROM g),
m AS (SELECT event_id, lesson_id, seg, max(tt) - min(f) AS len FROM s GROUP BY ALL)
SELECT d.event_id, coalesce(sum(m.len), 0) AS covered_s FROM done d LEFT JOIN m USING (event_id) GROUP BY d.event_id;
INSERT INTO wt_flags SELECT 'watch_time.low_coverage', d.user_id, d.course_id, d.t // 86400000000
FROM ev d JOIN wt_low l USING (event_id)
JOIN read_csv('""" + lake + """/catalog.csv') c ON c.course_id = d.course_id
WHERE l.covered_s / c.duration_s < c.min_watch_ratio
""",
)

stage(
    "multi_login",
    f"""
CREATE TABLE ml_seg AS
WITH e AS (SELECT user_id, org_unit, session_id, device_id, ip, t,
                  CASE WHEN t - lag(t) OVER (PARTITION BY user_id, session_id ORDER BY t, event_id) <= 300e6 THEN 0 ELSE 1 END AS new_seg,
                  event_id
           FROM ev WHERE session_id IS NOT NULL),
s AS (SELECT *, sum(new_seg) OVER (PARTITION BY user_id, session_id ORDER BY t, event_id ROWS UNBOUNDED PRECEDING) AS seg FROM e)
SELECT user_id, session_id, seg, any_value(org_unit) AS org_unit, any_value(device_id) AS device_id, any_value(ip) AS ip,
       min(t) AS start, max(t) AS "end", count(*) AS events, min(t) // {DAY} AS day
FROM s GROUP BY user_id, session_id, seg;
CREATE TABLE ml_flags AS
WITH w AS (
  SELECT *,
    max("end") OVER p AS o_end,
    arg_max(session_id, "end") OVER p AS o_session,
    arg_max(device_id, "end") OVER p AS o_device,
    arg_max(ip, "end") OVER p AS o_ip
  FROM ml_seg
  WINDOW p AS (PARTITION BY user_id ORDER BY start, session_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT 'multi_login.concurrent_sessions' AS rule, user_id, least(session_id, o_session) AS a, greatest(session_id, o_session) AS b,
       start // {DAY} AS day, sum(least("end", o_end) - start) / 1e6 AS overlap_s
FROM w WHERE o_session IS NOT NULL AND o_session <> session_id AND device_id <> o_device
  AND least("end", o_end) > start
  AND (ip IS NULL OR o_ip IS NULL OR string_split(ip, '.')[1:3] <> string_split(o_ip, '.')[1:3])
GROUP BY ALL HAVING sum(least("end", o_end) - start) / 1e6 >= 60;
CREATE TABLE ml_travel AS
WITH g AS (SELECT user_id, t, geo_lat AS lat, geo_lon AS lon,
                  lag(geo_lat) OVER u AS plat, lag(geo_lon) OVER u AS plon, lag(t) OVER u AS pt
           FROM ev WHERE geo_lat IS NOT NULL AND geo_lon IS NOT NULL
           WINDOW u AS (PARTITION BY user_id ORDER BY t, event_id)),
h AS (SELECT *, 2 * 6371 * asin(least(1, sqrt(pow(sin(radians(lat - plat) / 2), 2)
        + cos(radians(plat)) * cos(radians(lat)) * pow(sin(radians(lon - plon) / 2), 2)))) AS km
      FROM g WHERE plat IS NOT NULL AND (lat <> plat OR lon <> plon))
SELECT 'multi_login.impossible_travel' AS rule, user_id, pt // {DAY} AS day, count(*) AS hops,
       max(km / (greatest((t - pt) / 1e6, 60) / 3600)) AS kmh
FROM h WHERE km >= 300 AND km / (greatest((t - pt) / 1e6, 60) / 3600) > 900 GROUP BY ALL
""",
)

stage(
    "course_switching",
    f"""
CREATE TABLE cs_changes AS
WITH e AS (SELECT user_id, t, event_id, course_id, lag(course_id) OVER (PARTITION BY user_id ORDER BY t, event_id) AS prev
           FROM ev WHERE event_type IN ('course_enter','video_play') AND course_id IS NOT NULL)
SELECT user_id, t, course_id, prev FROM e WHERE prev IS NOT NULL AND prev <> course_id;
CREATE TABLE cs_bursts AS
WITH k AS (SELECT *, lag(t, 5) OVER (PARTITION BY user_id ORDER BY t) AS k_start FROM cs_changes),
b AS (SELECT * FROM k WHERE k_start IS NOT NULL AND t - k_start <= 600e6),
e AS (SELECT *, CASE WHEN k_start <= lag(t) OVER (PARTITION BY user_id ORDER BY t) THEN 0 ELSE 1 END AS new_ep FROM b),
s AS (SELECT *, sum(new_ep) OVER (PARTITION BY user_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS ep FROM e)
SELECT user_id, ep, min(k_start) AS start, max(t) AS "end", min(t - k_start) AS fastest_us FROM s GROUP BY ALL;
CREATE TABLE cs_burst_counts AS
SELECT b.user_id, b.start, count(*) AS changes, list_distinct(list(c.course_id) || list(c.prev)) AS courses
FROM cs_bursts b JOIN cs_changes c ON c.user_id = b.user_id AND c.t BETWEEN b.start AND b."end" GROUP BY ALL;
CREATE TABLE cs_parallel AS
WITH o AS (SELECT *, coalesce(play_s > 0, false) AS on_, lag(play_s > 0) OVER s AS prev_on,
                  row_number() OVER s = 1 AS first_
           FROM iv WINDOW s AS (PARTITION BY user_id, session_id, course_id, lesson_id ORDER BY t)),
e AS (SELECT *, sum(CASE WHEN first_ OR NOT coalesce(prev_on, false) THEN 1 ELSE 0 END)
                OVER (PARTITION BY user_id, session_id, course_id, lesson_id ORDER BY t ROWS UNBOUNDED PRECEDING) AS ep
      FROM o),
p AS (SELECT user_id, session_id, course_id, lesson_id, ep, min(t) AS start, max(t + (play_s * 1e6)::BIGINT) AS "end"
      FROM e WHERE on_ GROUP BY ALL),
w AS (SELECT *, max("end") OVER q AS o_end, arg_max(course_id, "end") OVER q AS o_course FROM p
      WINDOW q AS (PARTITION BY user_id ORDER BY start, course_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))
SELECT 'course_switching.parallel_playback' AS rule, user_id, least(course_id, o_course) AS a, greatest(course_id, o_course) AS b,
       start // {DAY} AS day, sum(least("end", o_end) - start) / 1e6 AS overlap_s
FROM w WHERE o_course IS NOT NULL AND o_course <> course_id AND least("end", o_end) > start
GROUP BY ALL HAVING sum(least("end", o_end) - start) / 1e6 >= 60
""",
)

stage(
    "credit_burst",
    f"""
CREATE TABLE cb_daily AS
SELECT user_id, t // {DAY} AS day, any_value(org_unit) AS org_unit, sum(credits) AS credits, count(*) AS completions,
       ceil(sum(credits)) AS x, min(t) AS first_t, max(t) AS last_t
FROM ev WHERE event_type = 'course_complete' GROUP BY ALL;
CREATE TABLE cb_features AS
WITH own AS (SELECT a.user_id, a.day, sum(b.x) / 28 AS lambda_user FROM cb_daily a JOIN cb_daily b
             ON a.user_id = b.user_id AND b.day < a.day AND b.day >= a.day - 28 GROUP BY ALL),
od AS (SELECT org_unit, day, sum(x) AS org_x, count(*) AS org_n FROM cb_daily WHERE org_unit IS NOT NULL GROUP BY ALL),
ot AS (SELECT a.org_unit, a.day, sum(b.org_x) / sum(b.org_n) AS lambda_peers_trailing FROM od a JOIN od b
       ON a.org_unit = b.org_unit AND b.day < a.day AND b.day >= a.day - 28 GROUP BY ALL),
eng AS (SELECT user_id, day, sum(engaged_s) AS engaged_s FROM iv GROUP BY ALL),
sup AS (SELECT d.user_id, d.day, sum(e.engaged_s) AS engaged_s FROM cb_daily d JOIN eng e
        ON e.user_id = d.user_id AND e.day <= d.day AND e.day > d.day - 7 GROUP BY ALL)
SELECT d.*, coalesce(own.lambda_user, 0) AS lambda_user,
       CASE WHEN od.org_n > 1 THEN (od.org_x - d.x) / (od.org_n - 1) ELSE 0 END AS lambda_peers_day,
       coalesce(ot.lambda_peers_trailing, 0) AS lambda_peers_trailing, coalesce(sup.engaged_s, 0) AS engaged_s
FROM cb_daily d LEFT JOIN own USING (user_id, day) LEFT JOIN od USING (org_unit, day)
LEFT JOIN ot USING (org_unit, day) LEFT JOIN sup USING (user_id, day);
CREATE TABLE cb_flags AS
SELECT 'credit_burst.poisson_tail' AS rule, user_id, day,
       greatest(lambda_user, lambda_peers_day, lambda_peers_trailing, 0.5) AS lam, x
FROM cb_features WHERE credits >= 10
""",
)
# The Poisson tail itself (P(X >= x | λ) < α) on the few candidate rows, in Python: DuckDB has no
# Poisson CDF. Timed with the job.
t = time.perf_counter()
import math


def upper_tail(x, lam):
    s, term = 0.0, math.exp(-lam)
    for k in range(int(x)):
        s += term
        term *= lam / (k + 1)
    return max(0.0, 1.0 - s)


cands = con.execute("SELECT user_id, day, lam, x FROM cb_flags").fetchall()
burst_flags = sum(1 for (_, _, lam, x) in cands if upper_tail(x, lam) < 1e-3)
stages["credit_burst"] += time.perf_counter() - t

stage(
    "quiz_speed",
    f"""
CREATE TABLE qs_features AS
SELECT event_id, user_id, org_unit, course_id, quiz_id, t, t // {DAY} AS day, questions, elapsed_s, score, max_score,
       elapsed_s / questions AS seconds_per_question, score / max_score AS score_ratio
FROM ev WHERE event_type = 'quiz_submit' AND questions > 0 AND max_score > 0;
CREATE TABLE qs_flags AS SELECT 'quiz_speed.too_fast' AS rule, * FROM qs_features
WHERE seconds_per_question < 3 AND score_ratio >= 0.9 AND questions >= 1
""",
)

stage(
    "shared_device",
    f"""
CREATE TABLE sd_features AS
SELECT device_id, t // {DAY} AS day, count(DISTINCT user_id) AS accounts, count(*) AS events, min(t) AS first_t,
       max(t) AS last_t, list(DISTINCT user_id ORDER BY user_id) AS users
FROM ev WHERE event_type IN ('login','checkin') AND device_id IS NOT NULL GROUP BY ALL;
CREATE TABLE sd_flags AS SELECT 'shared_device.many_accounts' AS rule, device_id, day, unnest(users) AS user_id
FROM sd_features WHERE accounts >= 3
""",
)

stage(
    "automation",
    f"""
CREATE TABLE au_play AS
WITH b AS (
  SELECT user_id, org_unit, session_id, course_id, lesson_id, t, event_id, input_events,
         event_type = 'heartbeat' AND coalesce(playing, false) AND coalesce(visible, false) AS play
  FROM ev WHERE event_type IN ('heartbeat','video_pause','video_seek','video_rate','visibility','login','logout')
), s AS (
  SELECT *, play AND (lag(session_id) OVER w IS DISTINCT FROM session_id OR NOT coalesce(lag(play) OVER w, false)
                      OR t - lag(t) OVER w > 60e6) AS start_
  FROM b WINDOW w AS (PARTITION BY user_id ORDER BY t, event_id)
), n AS (
  SELECT *, sum(start_::INT) OVER (PARTITION BY user_id ORDER BY t, event_id ROWS UNBOUNDED PRECEDING) AS stretch FROM s
)
SELECT *, CASE WHEN start_ THEN NULL ELSE (t - lag(t) OVER (PARTITION BY user_id, stretch ORDER BY t, event_id)) / 1e6 END AS iv_s,
       (t // 3600000000) % 24 AS hour
FROM n WHERE play;
CREATE TABLE au_stretch AS
SELECT user_id, stretch, any_value(org_unit) AS org_unit, any_value(session_id) AS session_id, min(t) AS start, max(t) AS "end",
       count(*) AS heartbeats, count(DISTINCT course_id) AS courses, count(DISTINCT lesson_id) AS lessons,
       count(iv_s) AS intervals, avg(iv_s) AS interval_mean_s, stddev_samp(iv_s) AS interval_std_s,
       count(input_events) AS input_reported, sum(input_events) AS input_events,
       (max(t) - min(t)) / 1e6 AS play_s, min(t) // {DAY} AS day
FROM au_play GROUP BY user_id, stretch HAVING count(*) > 1;
CREATE TABLE au_hours AS
WITH lu AS (SELECT DISTINCT user_id FROM au_stretch WHERE play_s >= 5400),
hb AS (SELECT user_id, stretch, hour FROM au_play SEMI JOIN lu USING (user_id)),
uh AS (SELECT user_id, hour, count(*) AS user_n FROM hb GROUP BY ALL),
sh AS (SELECT user_id, stretch, hour, count(*) AS stretch_n FROM hb GROUP BY ALL),
ut AS (SELECT user_id, count(*) AS user_total FROM hb GROUP BY ALL),
o AS (SELECT user_id, stretch, sum(user_n - stretch_n) AS other_in, sum(stretch_n) AS stretch_total
      FROM sh JOIN uh USING (user_id, hour) GROUP BY ALL)
SELECT user_id, stretch, CASE WHEN user_total > stretch_total THEN other_in / (user_total - stretch_total) END AS other_hours_share
FROM o JOIN ut USING (user_id);
CREATE TABLE au_checks AS
WITH cs AS (SELECT DISTINCT user_id, session_id FROM ev WHERE event_type = 'attention_check'),
e AS (SELECT user_id, org_unit, session_id, t, event_id, event_type, playing, answered, response_s, correct
      FROM ev SEMI JOIN cs USING (user_id, session_id) WHERE event_type IN ('heartbeat','attention_check')),
n AS (SELECT *, first_value(CASE WHEN event_type = 'heartbeat' THEN playing END IGNORE NULLS) OVER w AS next_playing,
             first_value(CASE WHEN event_type = 'heartbeat' THEN t END IGNORE NULLS) OVER w AS next_t
      FROM e WINDOW w AS (PARTITION BY user_id, session_id ORDER BY t, event_id ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING))
SELECT user_id, session_id, min(t) // {DAY} AS day, count(*) AS checks,
       count(*) FILTER (NOT coalesce(answered, false)) AS missed,
       count(*) FILTER (NOT coalesce(answered, false) AND coalesce(next_playing, false) AND coalesce(next_t - t <= 60e6, false)) AS missed_playing,
       count(response_s) FILTER (coalesce(answered, false)) AS responses,
       median(response_s) FILTER (coalesce(answered, false)) AS response_median_s,
       avg(response_s) FILTER (coalesce(answered, false)) AS response_mean_s,
       stddev_samp(response_s) FILTER (coalesce(answered, false)) AS response_std_s
FROM n WHERE event_type = 'attention_check' GROUP BY user_id, session_id;
CREATE TABLE au_flags AS
SELECT 'automation.unbroken_play' AS rule, user_id, day FROM au_stretch WHERE play_s >= 10800 AND courses >= 3
UNION ALL
SELECT 'automation.timer_cadence', user_id, day FROM au_stretch WHERE intervals >= 240 AND courses >= 2 AND interval_std_s <= 0.002
UNION ALL
SELECT 'automation.no_input', user_id, day FROM au_stretch
WHERE play_s >= 5400 AND courses >= 2 AND input_reported >= 0.9 * heartbeats AND input_reported > 0 AND input_events = 0
UNION ALL
SELECT 'automation.missed_checks', user_id, day FROM au_checks WHERE missed_playing >= 2 AND missed_playing >= 0.5 * checks
UNION ALL
SELECT 'automation.machine_responses', user_id, day FROM au_checks
WHERE (responses >= 4 AND response_median_s < 1.0) OR (responses >= 10 AND response_std_s / response_mean_s < 0.05)
""",
)

stage(
    "proxy_learning",
    f"""
CREATE TABLE pl_uses AS
SELECT device_id, user_id, org_unit, ip, course_id, t, (t + {PROXY_DAY_SHIFT}) // {DAY} AS day,
  CASE WHEN event_type = 'heartbeat' AND coalesce(playing, false)
            AND lead(user_id) OVER w = user_id AND lead(session_id) OVER w = session_id
       THEN least((lead(t) OVER w - t) / 1e6, 60) ELSE 0 END AS play_s,
  coalesce(lag((t + {PROXY_DAY_SHIFT}) // {DAY}) OVER w = (t + {PROXY_DAY_SHIFT}) // {DAY}
           AND lag(user_id) OVER w <> user_id, false) AS new_hand
FROM ev WHERE event_type IN ('login','heartbeat','video_play','course_enter','quiz_submit') AND device_id IS NOT NULL
WINDOW w AS (PARTITION BY device_id ORDER BY t, user_id);
CREATE TABLE pl_features AS
WITH per_day AS (
  SELECT user_id, device_id, day, any_value(org_unit) AS org_unit, min(t) AS first_t, max(t) AS last_t,
         sum(play_s) AS play_s, list(DISTINCT course_id) AS courses
  FROM pl_uses GROUP BY ALL
), sw AS (
  SELECT device_id, day, sum(new_hand::INT) AS switches, count(DISTINCT user_id) AS accounts_day FROM pl_uses GROUP BY ALL
), days_on AS (
  SELECT user_id, device_id, count(*) AS days_on_device FROM per_day GROUP BY ALL
), owners AS (
  SELECT device_id, first(user_id ORDER BY days_on_device DESC, user_id) AS owner, max(days_on_device) AS owner_days,
         count(*) AS device_accounts
  FROM days_on GROUP BY ALL
), addr AS (
  SELECT DISTINCT user_id, device_id, day, ip FROM pl_uses WHERE ip IS NOT NULL
), apa AS (
  SELECT ip, count(DISTINCT user_id) AS address_accounts FROM addr GROUP BY ip
), own AS (
  SELECT DISTINCT user_id, ip, device_id AS other FROM addr
), home AS (
  SELECT a.user_id, a.device_id, a.day, min(apa.address_accounts) AS address_accounts
  FROM addr a JOIN own o ON o.user_id = a.user_id AND o.ip = a.ip AND o.other <> a.device_id
  JOIN apa ON apa.ip = a.ip GROUP BY ALL
)
SELECT * FROM per_day JOIN days_on USING (user_id, device_id) JOIN owners USING (device_id)
JOIN sw USING (device_id, day) LEFT JOIN home USING (user_id, device_id, day);
CREATE TABLE pl_flags AS
SELECT 'proxy_learning.borrowed_device' AS rule, user_id, device_id FROM pl_features
WHERE owner <> user_id AND owner_days >= 3 AND days_on_device <= 1 AND NOT coalesce(address_accounts <= 3, false)
  AND play_s >= 600
UNION ALL
SELECT 'proxy_learning.alternating_accounts', user_id, device_id FROM pl_features
WHERE accounts_day = 2 AND switches >= 2 AND owner <> user_id AND NOT coalesce(address_accounts <= 3, false)
GROUP BY user_id, device_id HAVING count(*) >= 2
""",
)

total = sum(stages.values())
print(f"duckdb {duckdb.__version__}, {threads} threads, {n_events} events (deduplicated) from {lake}")
print(f"{'stage':<18} {'wall s':>9} {'events/s':>14}")
for name, s in stages.items():
    print(f"{name:<18} {s:>9.2f} {n_events / max(s, 1e-9):>14.0f}")
print(f"{'total':<18} {total:>9.2f} {n_events / total:>14.0f}")
print("flag candidates:")
for table in ["wt_flags", "ml_flags", "ml_travel", "cs_parallel", "qs_flags", "sd_flags", "au_flags", "pl_flags"]:
    for rule, n in con.execute(f"SELECT rule, count(*) FROM {table} GROUP BY rule ORDER BY rule").fetchall():
        print(f"  {rule:<36} {n:>7}")
print(f"  {'course_switching.rapid_switching':<36} {con.execute('SELECT count(*) FROM cs_bursts').fetchone()[0]:>7}")
print(f"  {'credit_burst.poisson_tail':<36} {burst_flags:>7}")
print(f"peak RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

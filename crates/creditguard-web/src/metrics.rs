//! Prometheus metrics of the web app: requests by route and status, a latency histogram by
//! route, decisions by outcome and logins by result. Routes are the router's templates
//! (`/cases/{case_id}`), never the raw path, so label cardinality stays low and no id leaks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The counters, behind one lock each (a few hundred nanoseconds per request).
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    decisions: Mutex<BTreeMap<String, u64>>,
    logins: Mutex<BTreeMap<&'static str, u64>>,
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_string()).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
    }

    pub fn decision(&self, outcome: &str) {
        if let Ok(mut m) = self.decisions.lock() {
            *m.entry(outcome.to_string()).or_default() += 1;
        }
    }

    /// `result`: `success`, `failure` or `locked`.
    pub fn login(&self, result: &'static str) {
        if let Ok(mut m) = self.logins.lock() {
            *m.entry(result).or_default() += 1;
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut o = String::new();
        o += "# HELP creditguard_web_requests_total HTTP requests by route template and status.\n";
        o += "# TYPE creditguard_web_requests_total counter\n";
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "creditguard_web_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
        o += "# HELP creditguard_web_request_duration_seconds Time to answer a request, by route template.\n";
        o += "# TYPE creditguard_web_request_duration_seconds histogram\n";
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let r = label(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "creditguard_web_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "creditguard_web_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "creditguard_web_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "creditguard_web_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count
                );
            }
        }
        o += "# HELP creditguard_web_decisions_total Case decisions taken in the web app, by outcome.\n";
        o += "# TYPE creditguard_web_decisions_total counter\n";
        if let Ok(m) = self.decisions.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    o,
                    "creditguard_web_decisions_total{{outcome=\"{}\"}} {n}",
                    label(outcome)
                );
            }
        }
        o += "# HELP creditguard_web_logins_total Login attempts by result (success, failure, locked).\n";
        o += "# TYPE creditguard_web_logins_total counter\n";
        if let Ok(m) = self.logins.lock() {
            for (result, n) in m.iter() {
                let _ = writeln!(o, "creditguard_web_logins_total{{result=\"{result}\"}} {n}");
            }
        }
        o
    }
}

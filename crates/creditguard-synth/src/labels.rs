//! The ground truth written beside the telemetry (`labels.json`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Strength};
use crate::{Error, Result};

/// Everything the generator knows about what it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    /// The settings that produced the telemetry.
    pub config: Config,
    /// Counts of what was written, including the injected data faults.
    pub summary: Summary,
    /// One entry per learner, honest ones included, in user order.
    pub learners: Vec<LearnerLabel>,
}

/// One learner's ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerLabel {
    pub user_id: String,
    pub org_unit: String,
    /// True when the generator planted no cheating on this learner.
    pub honest: bool,
    /// The planted episodes (empty for honest learners).
    pub labels: Vec<Label>,
}

/// One planted cheating episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The results-v1 rule the episode should trigger (`watch_time.speed`).
    pub rule: String,
    /// The course the episode concerns, when it concerns one.
    pub course_id: Option<String>,
    /// When the pattern happened, RFC 3339 UTC (true time: client clock skew is never applied
    /// to an episode's sessions).
    pub window_start: String,
    pub window_end: String,
    pub strength: Strength,
    /// Courses whose completion claims this episode taints: the scorer should withhold them.
    pub claims: Vec<String>,
    /// The key measured value, for eyeballing (`hidden_share=0.86 over 412 s`).
    pub detail: String,
}

/// Counts of what the generator wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Lines written (valid events, their duplicate deliveries and the invalid lines).
    pub lines: u64,
    /// Distinct valid events (each `event_id` once).
    pub events: u64,
    /// Extra deliveries of an already delivered event (same bytes, same `event_id`).
    pub duplicates: u64,
    /// Events delivered 20 s – 3 min after later events of the same learner.
    pub out_of_order: u64,
    /// Events delivered 1–8 hours after they happened.
    pub late: u64,
    /// Sessions whose client clock was off by 1–10 minutes (`ts` vs `received_at`).
    pub skewed_sessions: u64,
    /// Valid events carrying unknown extra fields.
    pub extra_fields: u64,
    /// Deliberately invalid lines, which a validator must reject.
    pub invalid_lines: u64,
    /// Invalid lines by the `RejectKind` name they should be rejected with.
    pub invalid_by_kind: BTreeMap<String, u64>,
    /// `course_complete` events (credit claims), duplicates not counted.
    pub course_completions: u64,
    /// Learners with at least one planted pattern.
    pub cheaters: u64,
}

impl Labels {
    /// Reads `labels.json`.
    pub fn read(path: impl AsRef<Path>) -> Result<Labels> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Labels {
            path: path.display().to_string(),
            source: e,
        })
    }

    /// Writes `labels.json` (pretty, stable order).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut text = serde_json::to_string_pretty(self).map_err(|e| Error::Labels {
            path: path.display().to_string(),
            source: e,
        })?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })
    }

    /// The learner with this id.
    pub fn learner(&self, user_id: &str) -> Option<&LearnerLabel> {
        self.learners.iter().find(|l| l.user_id == user_id)
    }
}

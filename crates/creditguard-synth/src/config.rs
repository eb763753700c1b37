//! What to generate: population size, period, cheating shares, strength, faults, seed.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A cheating pattern the generator can plant, one per labelled learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    BackgroundPlayback,
    Speed,
    LowCoverage,
    ConcurrentSessions,
    ImpossibleTravel,
    RapidSwitching,
    ParallelPlayback,
    CreditBurst,
    QuizTooFast,
    SharedDevice,
    /// A helper script plays course after course through the night without a pause, keeping
    /// the page "visible" (blatant: its own timer sends the heartbeats).
    ScriptedPlayback,
    /// The same, by a script that replays the player's requests from its own timer: heartbeats
    /// exactly every 15 s (also `automation.unbroken_play`).
    TimerCadence,
    /// A browser extension suppresses the attention checks while the video plays on.
    MissedChecks,
    /// A browser extension answers the attention checks (blatant: too fast; subtle: too
    /// regularly).
    MachineResponses,
    /// A player extension plays for hours and answers the checks at a person's pace, with no
    /// input at all.
    NoInput,
    /// A colleague does the learner's courses on the colleague's own laptop, at home (代学).
    ProxyLearning,
    /// The same on two evenings in a row, handing the laptop back and forth: the learner's
    /// account before and after the colleague's own study (A, B, A).
    ProxyAlternating,
}

impl Pattern {
    /// Every pattern, in the order of the results-v1 rule list.
    pub const ALL: [Pattern; 17] = [
        Pattern::BackgroundPlayback,
        Pattern::Speed,
        Pattern::LowCoverage,
        Pattern::ConcurrentSessions,
        Pattern::ImpossibleTravel,
        Pattern::RapidSwitching,
        Pattern::ParallelPlayback,
        Pattern::CreditBurst,
        Pattern::QuizTooFast,
        Pattern::SharedDevice,
        Pattern::ScriptedPlayback,
        Pattern::TimerCadence,
        Pattern::MissedChecks,
        Pattern::MachineResponses,
        Pattern::NoInput,
        Pattern::ProxyLearning,
        Pattern::ProxyAlternating,
    ];

    /// The patterns added after the first ten, whose shares live in
    /// [`Config::client_fake_shares`].
    pub const CLIENT_FAKES: [Pattern; 7] = [
        Pattern::ScriptedPlayback,
        Pattern::TimerCadence,
        Pattern::MissedChecks,
        Pattern::MachineResponses,
        Pattern::NoInput,
        Pattern::ProxyLearning,
        Pattern::ProxyAlternating,
    ];

    /// The results-v1 rule a learner with this pattern should trigger.
    pub fn rule(self) -> &'static str {
        match self {
            Pattern::ScriptedPlayback => "automation.unbroken_play",
            Pattern::TimerCadence => "automation.timer_cadence",
            Pattern::MissedChecks => "automation.missed_checks",
            Pattern::MachineResponses => "automation.machine_responses",
            Pattern::NoInput => "automation.no_input",
            Pattern::ProxyLearning => "proxy_learning.borrowed_device",
            Pattern::ProxyAlternating => "proxy_learning.alternating_accounts",
            _ => creditguard_contract::RULES[self as usize],
        }
    }

    /// Short name (`background_playback`), as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::BackgroundPlayback => "background_playback",
            Pattern::Speed => "speed",
            Pattern::LowCoverage => "low_coverage",
            Pattern::ConcurrentSessions => "concurrent_sessions",
            Pattern::ImpossibleTravel => "impossible_travel",
            Pattern::RapidSwitching => "rapid_switching",
            Pattern::ParallelPlayback => "parallel_playback",
            Pattern::CreditBurst => "credit_burst",
            Pattern::QuizTooFast => "quiz_too_fast",
            Pattern::SharedDevice => "shared_device",
            Pattern::ScriptedPlayback => "scripted_playback",
            Pattern::TimerCadence => "timer_cadence",
            Pattern::MissedChecks => "missed_checks",
            Pattern::MachineResponses => "machine_responses",
            Pattern::NoInput => "no_input",
            Pattern::ProxyLearning => "proxy_learning",
            Pattern::ProxyAlternating => "proxy_alternating",
        }
    }

    /// Parses a short name or a full rule name.
    pub fn parse(s: &str) -> Option<Pattern> {
        Pattern::ALL
            .into_iter()
            .find(|p| p.name() == s || p.rule() == s)
    }
}

/// How hard a cheater cheats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Far over the detector's threshold (hour-long background play, 4× speed, ...).
    Blatant,
    /// Just over the threshold (hidden share 0.85 over 6 minutes, 2.3× speed, ...).
    Subtle,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Blatant => "blatant",
            Strength::Subtle => "subtle",
        }
    }
}

/// Which strengths to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrengthMix {
    Blatant,
    Subtle,
    /// Half and half.
    Mixed,
}

impl StrengthMix {
    pub fn parse(s: &str) -> Option<StrengthMix> {
        match s {
            "blatant" => Some(StrengthMix::Blatant),
            "subtle" => Some(StrengthMix::Subtle),
            "mixed" => Some(StrengthMix::Mixed),
            _ => None,
        }
    }
}

/// Generator settings. `Config::default()` is the committed sample's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Number of learners.
    pub users: u32,
    /// Number of org units (departments / branches); each sits in one city.
    pub org_units: u32,
    /// Length of the period in days; its last day is the credit deadline.
    pub days: u32,
    /// First day of the period, days since 1970-01-01 (see `creditguard_contract::time::parse_day`).
    pub start_day: i64,
    /// Seed: the same config gives byte-identical output.
    pub seed: u64,
    /// Share of learners carrying each pattern, indexed like [`Pattern::ALL`].
    pub shares: [f64; 10],
    /// Share of learners carrying each pattern of [`Pattern::CLIENT_FAKES`], indexed like it.
    /// Default 0 (left out of the serialized config then, so older label files read the same).
    #[serde(default, skip_serializing_if = "all_zero")]
    pub client_fake_shares: [f64; 7],
    /// The platform shows attention checks (about one per 32 heartbeats of visible play) and
    /// counts input on heartbeats (`input_events`). Needed by the patterns `missed_checks`,
    /// `machine_responses` and `no_input`, which plant nothing without it. Default false (left
    /// out of the serialized config then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_signals: bool,
    /// Honest look-alikes of the cheats that fake the client and of credit bursts: on about 6 %
    /// of their study days honest learners watch one long course (40 minutes or more when one
    /// is left) in the evening from start to end without pausing, seeking or switching tabs
    /// (answering the attention checks); and some catch up once late in the period, watching
    /// short courses in full at 1.5–2× all day and claiming 10 credits or more. And about 5 % of
    /// pairs of honest neighbours live together (one home address) and on two to four evenings
    /// hand the family tablet back and forth, each doing their own courses (the look-alike of
    /// `proxy_alternating`). Default false (left out of the serialized config then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lookalikes: bool,
    /// Credit-burst cheaters claim courses they did not watch (a glance at the first lesson,
    /// then the quiz and the claim), which `credit_burst` is for. Off: they binge-watch at
    /// 1.5–2× (the shipped sample's behaviour), a day the rule rightly leaves alone. Default
    /// false (left out of the serialized config then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unwatched_bursts: bool,
    pub strength: StrengthMix,
    /// Probability per event of a delivery fault (duplicate, out of order, late, extra fields,
    /// an extra invalid line); per session, five times this is the chance of client clock skew.
    pub fault_rate: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            users: 300,
            org_units: 8,
            days: 14,
            // 2026-03-02, a Monday.
            start_day: 20_514,
            seed: 7,
            shares: [0.02; 10],
            client_fake_shares: [0.0; 7],
            client_signals: false,
            lookalikes: false,
            unwatched_bursts: false,
            strength: StrengthMix::Mixed,
            fault_rate: 0.002,
        }
    }
}

impl Config {
    /// The share of one pattern.
    pub fn share(&self, p: Pattern) -> f64 {
        match Pattern::CLIENT_FAKES.iter().position(|&q| q == p) {
            Some(i) => self.client_fake_shares[i],
            None => self.shares[p as usize],
        }
    }

    /// Sets one pattern's share.
    pub fn set_share(&mut self, p: Pattern, share: f64) {
        match Pattern::CLIENT_FAKES.iter().position(|&q| q == p) {
            Some(i) => self.client_fake_shares[i] = share,
            None => self.shares[p as usize] = share,
        }
    }

    /// Sets the share of each of the first ten patterns (those before [`Pattern::CLIENT_FAKES`]).
    pub fn with_share_each(mut self, share: f64) -> Config {
        self.shares = [share; 10];
        self
    }

    /// Sets the share of each pattern of [`Pattern::CLIENT_FAKES`] and turns on
    /// `client_signals` (which three of them need), the honest `lookalikes` and
    /// `unwatched_bursts`.
    pub fn with_client_fakes(mut self, share: f64) -> Config {
        self.client_fake_shares = [share; 7];
        self.client_signals = true;
        self.lookalikes = true;
        self.unwatched_bursts = true;
        self
    }

    /// Checks every setting and reports all problems at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.users == 0 {
            problems.push("users must be ≥ 1".to_string());
        }
        if self.org_units == 0 {
            problems.push("org_units must be ≥ 1".to_string());
        }
        // Episodes need a day before (baseline) and after (completions) them.
        if self.days < 5 {
            problems.push(format!("days must be ≥ 5, got {}", self.days));
        }
        for p in Pattern::ALL {
            let s = self.share(p);
            if !(0.0..=1.0).contains(&s) {
                problems.push(format!(
                    "share of {} must be within 0..1, got {s}",
                    p.name()
                ));
            }
        }
        let total: f64 = Pattern::ALL.iter().map(|&p| self.share(p)).sum();
        if total > 0.9 {
            problems.push(format!("the pattern shares add up to {total:.3}; keep them ≤ 0.9 so honest learners remain"));
        }
        if !(0.0..=0.2).contains(&self.fault_rate) {
            problems.push(format!(
                "fault_rate must be within 0..0.2, got {}",
                self.fault_rate
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }
}

fn all_zero(shares: &[f64; 7]) -> bool {
    shares.iter().all(|&s| s == 0.0)
}

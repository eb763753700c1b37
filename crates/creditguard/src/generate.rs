//! `creditguard generate`: synthetic telemetry with labelled cheating, its course catalog and
//! the labels (see the `creditguard-synth` crate).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use creditguard_synth::{Config, Generator, Output, Pattern, StrengthMix};

/// Generate synthetic telemetry (NDJSON), a course catalog (CSV) and ground-truth labels (JSON).
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Number of learners.
    #[arg(long, env = "CREDITGUARD_GENERATE_USERS", default_value_t = 300)]
    pub users: u32,
    /// Number of org units (departments / branches, each at one site).
    #[arg(long, env = "CREDITGUARD_GENERATE_ORG_UNITS", default_value_t = 8)]
    pub org_units: u32,
    /// Length of the period in days; the last day is the credit deadline.
    #[arg(long, env = "CREDITGUARD_GENERATE_DAYS", default_value_t = 14)]
    pub days: u32,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long, env = "CREDITGUARD_GENERATE_START", default_value = "2026-03-02")]
    pub start: String,
    /// Random seed: the same arguments give byte-identical files.
    #[arg(long, env = "CREDITGUARD_GENERATE_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Share of learners carrying each cheating pattern (one pattern per cheater).
    #[arg(long, env = "CREDITGUARD_GENERATE_CHEAT_SHARE", default_value_t = 0.02)]
    pub cheat_share: f64,
    /// Per-pattern share overriding --cheat-share, as `pattern=share` (e.g. `speed=0.05`;
    /// patterns: background_playback, speed, low_coverage, concurrent_sessions,
    /// impossible_travel, rapid_switching, parallel_playback, credit_burst, quiz_too_fast,
    /// shared_device). Repeat the flag or separate with commas.
    #[arg(long = "pattern-share", env = "CREDITGUARD_GENERATE_PATTERN_SHARE", value_delimiter = ',')]
    pub pattern_share: Vec<String>,
    /// How hard cheaters cheat: blatant, subtle or mixed (half each).
    #[arg(long, env = "CREDITGUARD_GENERATE_STRENGTH", default_value = "mixed")]
    pub strength: String,
    /// Probability per event of a delivery fault (duplicate, out of order, late, unknown extra
    /// fields, an extra invalid line); five times this per session is the clock-skew chance.
    #[arg(long, env = "CREDITGUARD_GENERATE_FAULT_RATE", default_value_t = 0.002)]
    pub fault_rate: f64,
    /// Telemetry output: a file (zstd-compressed when it ends in `.zst`) or `-` for stdout.
    #[arg(long, short, env = "CREDITGUARD_GENERATE_OUT")]
    pub out: PathBuf,
    /// Catalog CSV [default: `<out stem>.catalog.csv` beside --out; none for stdout].
    #[arg(long, env = "CREDITGUARD_GENERATE_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Labels JSON [default: `<out stem>.labels.json` beside --out; none for stdout].
    #[arg(long, env = "CREDITGUARD_GENERATE_LABELS")]
    pub labels: Option<PathBuf>,
    /// zstd level for `.zst` output (1 fast … 19 small).
    #[arg(long, env = "CREDITGUARD_GENERATE_ZSTD_LEVEL", default_value_t = 3)]
    pub zstd_level: i32,
}

impl GenerateArgs {
    /// Raw arguments → generator settings, every problem reported at once.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut problems = Vec::new();
        let start_day = creditguard_contract::time::parse_day(&self.start).unwrap_or_else(|e| {
            problems.push(format!("--start `{}`: {e}", self.start));
            0
        });
        let strength = StrengthMix::parse(&self.strength).unwrap_or_else(|| {
            problems.push(format!("--strength `{}`: expected blatant, subtle or mixed", self.strength));
            StrengthMix::Mixed
        });
        let mut cfg = Config {
            users: self.users,
            org_units: self.org_units,
            days: self.days,
            start_day,
            seed: self.seed,
            strength,
            fault_rate: self.fault_rate,
            ..Config::default()
        }
        .with_share_each(self.cheat_share);
        for item in &self.pattern_share {
            let parsed = item.split_once('=').and_then(|(p, s)| Some((Pattern::parse(p.trim())?, s.trim().parse::<f64>().ok()?)));
            match parsed {
                Some((p, share)) => cfg.shares[p as usize] = share,
                None => problems.push(format!("--pattern-share `{item}`: expected pattern=share, e.g. speed=0.05")),
            }
        }
        if let Err(e) = cfg.validate() {
            problems.push(e.to_string());
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(cfg)
    }
}

/// `<dir>/<stem>.<suffix>` where stem is the file name before its first dot.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("telemetry");
    let stem = name.split('.').next().unwrap_or(name);
    out.with_file_name(format!("{stem}.{suffix}"))
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let stdout = args.out.as_os_str() == "-";
    let catalog_path = args.catalog.clone().or_else(|| (!stdout).then(|| beside(&args.out, "catalog.csv")));
    let labels_path = args.labels.clone().or_else(|| (!stdout).then(|| beside(&args.out, "labels.json")));
    let started = Instant::now();
    let gen = Generator::new(cfg).context("generator settings")?;
    let mut out = Output::create(&args.out, args.zstd_level).with_context(|| format!("creating {}", args.out.display()))?;
    let labels = gen.write(&mut out).with_context(|| format!("writing {}", args.out.display()))?;
    out.finish().with_context(|| format!("finishing {}", args.out.display()))?;
    if let Some(path) = &catalog_path {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        gen.catalog().write_csv(std::io::BufWriter::new(file)).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &labels_path {
        labels.write(path).with_context(|| format!("writing {}", path.display()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let s = &labels.summary;
    tracing::info!(
        out = %args.out.display(),
        catalog = ?catalog_path,
        labels = ?labels_path,
        lines = s.lines,
        events = s.events,
        invalid_lines = s.invalid_lines,
        duplicates = s.duplicates,
        late = s.late,
        out_of_order = s.out_of_order,
        skewed_sessions = s.skewed_sessions,
        learners = labels.learners.len(),
        cheaters = s.cheaters,
        credit_claims = s.course_completions,
        seconds = secs,
        events_per_s = (s.lines as f64 / secs) as u64,
        "Generated telemetry."
    );
    // Logs default to warnings only; the figures are the point of this command, so say them.
    eprintln!(
        "generated {} lines ({} events, {} duplicate deliveries, {} invalid lines) for {} learners ({} labelled cheaters, {} credit claims) in {secs:.2} s ({:.0} lines/s)",
        s.lines,
        s.events,
        s.duplicates,
        s.invalid_lines,
        labels.learners.len(),
        s.cheaters,
        s.course_completions,
        s.lines as f64 / secs
    );
    Ok(())
}

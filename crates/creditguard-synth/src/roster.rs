//! The employee roster of a generated population, consistent with its telemetry: every learner
//! under `REGION/<org unit>` (the org unit their events name), roles and levels, hiring and
//! leaving dates that never cut into the telemetry's period, the honest business trips as
//! `travel`, some leave before the period, and a few employees who never use the platform.
//!
//! It is drawn from its own random stream, so adding it changes no event.

use std::io::Write;

use creditguard_contract::time::format_day;
use rand::Rng;

use crate::plan::{self, Plan, Stream};
use crate::Result;

/// One employee (`roster.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    pub user_id: String,
    /// `CN/East/ou04-shanghai`: region, then the org unit telemetry names.
    pub org_path: String,
    /// `manager`, `sales` or `staff`.
    pub role: &'static str,
    /// `M1`–`M3` for managers, `L1`–`L5` otherwise.
    pub level: String,
    /// Days since the epoch.
    pub hired_on: i64,
    pub left_on: Option<i64>,
    /// No telemetry at all: expected to learn, never seen.
    pub inactive: bool,
}

/// A period of leave or business travel (`leave.csv`), inclusive days since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Absence {
    pub user_id: String,
    /// `leave` or `travel`.
    pub kind: &'static str,
    pub from: i64,
    pub to: i64,
}

/// The roster and its leave file.
#[derive(Debug, Clone, PartialEq)]
pub struct Roster {
    pub employees: Vec<Employee>,
    pub absences: Vec<Absence>,
}

/// The region of a site, the first unit of the org paths.
fn region(city: &str) -> &'static str {
    match city {
        "shanghai" => "CN/East",
        "beijing" => "CN/North",
        "shenzhen" => "CN/South",
        "chengdu" => "CN/West",
        "wuhan" => "CN/Central",
        "singapore" | "bangalore" | "tokyo" => "APAC",
        "frankfurt" | "london" => "EMEA",
        _ => "AMER",
    }
}

/// Index of the roster's random stream for the employees who never learn (after the learners').
const INACTIVE_BASE: u64 = 1 << 40;

impl Roster {
    pub(crate) fn generate(plan: &Plan) -> Roster {
        let cfg = &plan.cfg;
        let (start, end) = (cfg.start_day, cfg.start_day + i64::from(cfg.days) - 1);
        let mut employees = Vec::new();
        let mut absences = Vec::new();
        for u in &plan.users {
            let mut rng = plan::rng_for(cfg.seed, Stream::Roster, u64::from(u.idx));
            let e = employee(
                plan,
                &mut rng,
                u.user_id.clone(),
                u.org,
                (start, end),
                false,
            );
            if let Some((first, last, _)) = u.trip {
                absences.push(Absence {
                    user_id: e.user_id.clone(),
                    kind: "travel",
                    from: start + i64::from(first),
                    to: start + i64::from(last),
                });
            }
            // Leave taken before the period (never while the telemetry shows them learning).
            if rng.random_bool(0.05) && start - e.hired_on > 40 {
                let from = start - rng.random_range(15..=40);
                absences.push(Absence {
                    user_id: e.user_id.clone(),
                    kind: "leave",
                    from,
                    to: from + rng.random_range(3..=12),
                });
            }
            employees.push(e);
        }
        let next = plan.users.iter().map(|u| u.idx).max().map_or(0, |m| m + 1);
        for k in 0..(cfg.users / 40).max(1) {
            let mut rng = plan::rng_for(cfg.seed, Stream::Roster, INACTIVE_BASE + u64::from(k));
            let org = rng.random_range(0..cfg.org_units);
            let id = format!("u{:05}", next + k);
            employees.push(employee(plan, &mut rng, id, org, (start, end), true));
        }
        Roster {
            employees,
            absences,
        }
    }

    /// Writes `roster.csv` (`user_id,org_path,role,level,hired_on,left_on`) and `leave.csv`
    /// (`user_id,kind,from,to`), as `creditguard`'s `[roster]` reads them.
    pub fn write_csv<W: Write, L: Write>(&self, mut roster: W, mut leave: L) -> Result<()> {
        writeln!(roster, "user_id,org_path,role,level,hired_on,left_on")?;
        for e in &self.employees {
            writeln!(
                roster,
                "{},{},{},{},{},{}",
                e.user_id,
                e.org_path,
                e.role,
                e.level,
                format_day(e.hired_on),
                e.left_on.map(format_day).unwrap_or_default()
            )?;
        }
        writeln!(leave, "user_id,kind,from,to")?;
        for a in &self.absences {
            writeln!(
                leave,
                "{},{},{},{}",
                a.user_id,
                a.kind,
                format_day(a.from),
                format_day(a.to)
            )?;
        }
        roster.flush()?;
        leave.flush()?;
        Ok(())
    }
}

/// One employee of org unit `org`: one in nine a manager, staff of the Shenzhen and Singapore
/// units in sales; hired before the period (one in twenty during the last four months), one in
/// fifty leaving within three months after it.
fn employee(
    plan: &Plan,
    rng: &mut rand::rngs::StdRng,
    user_id: String,
    org: u32,
    (start, end): (i64, i64),
    inactive: bool,
) -> Employee {
    let unit = plan.org_name(org);
    let city = unit.split_once('-').map_or("", |(_, c)| c);
    let role = if rng.random_bool(1.0 / 9.0) {
        "manager"
    } else if matches!(city, "shenzhen" | "singapore") {
        "sales"
    } else {
        "staff"
    };
    let level = if role == "manager" {
        format!("M{}", rng.random_range(1..=3))
    } else {
        format!("L{}", rng.random_range(1..=5))
    };
    let hired_on = if rng.random_bool(0.05) {
        start - rng.random_range(1..=120)
    } else {
        start - rng.random_range(365..=3650)
    };
    let left_on = rng
        .random_bool(0.02)
        .then(|| end + rng.random_range(1..=90));
    Employee {
        user_id,
        org_path: format!("{}/{unit}", region(city)),
        role,
        level,
        hired_on,
        left_on,
        inactive,
    }
}

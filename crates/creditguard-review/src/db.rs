//! The database: connecting, versioned migrations, row mapping, the audit chain's append, reads.

use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::audit::{hash_record, GENESIS};
use crate::model::{
    AuditRecord, CaseClaim, CaseDetail, CaseFilter, CaseFlag, CaseRow, CaseStatus, ClaimDecision,
    VerifyReport,
};
use crate::{Context as _, Error, Result};

/// The schema versions, in order: (version, description, SQL). A database records the versions
/// applied and their checksums; opening runs the missing ones, each in its own transaction, and
/// refuses a database whose applied migration text differs or that is newer than this binary.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "cases", include_str!("migrations/0001_cases.sql")),
    (
        2,
        "decisions",
        include_str!("migrations/0002_decisions.sql"),
    ),
    (3, "accounts", include_str!("migrations/0003_accounts.sql")),
    (
        4,
        "queue_scope",
        include_str!("migrations/0004_queue_scope.sql"),
    ),
    (
        5,
        "case_rules",
        include_str!("migrations/0005_case_rules.sql"),
    ),
];

/// In migration texts, `{rules_of_case}`: `,rule,rule,` of the distinct rules of the flags of
/// `cases.case_id` (an aggregate each backend spells its own way).
const RULES_OF_CASE_SQLITE: &str = "(SELECT ',' || group_concat(rule, ',') || ',' FROM \
    (SELECT DISTINCT f.rule FROM case_flags f WHERE f.case_id = cases.case_id))";
const RULES_OF_CASE_POSTGRES: &str = "(SELECT ',' || string_agg(DISTINCT f.rule, ',') || ',' \
    FROM case_flags f WHERE f.case_id = cases.case_id)";

/// In migration texts, the collation that compares text byte by byte (`{bytewise}`): an org-unit
/// subtree is then one index range on both backends.
const BYTEWISE_SQLITE: &str = "BINARY";
const BYTEWISE_POSTGRES: &str = "\"C\"";

/// The embedded default: `review.sqlite` in the lake directory.
pub fn default_sqlite_url(lake_root: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        lake_root.join("review.sqlite").display()
    )
}

/// The review store, over a connection pool.
#[derive(Debug, Clone)]
pub struct Review {
    pub(crate) pool: AnyPool,
    /// The URL without its password, for messages.
    pub(crate) name: String,
    /// The byte-wise collation of this backend (`BINARY` or `"C"`).
    pub(crate) bytewise: &'static str,
    /// The backend's function for the position of a substring (`instr` or `strpos`).
    pub(crate) find_fn: &'static str,
}

pub(crate) const CASE_COLS: &str = "case_id, user_id, org_unit, status, assignee, risk, \
    first_flag_at, last_flag_at, previous_case_id, opened_at, updated_at, decided_at, \
    decided_by, decision_reason, version";
pub(crate) const FLAG_COLS: &str = "flag_id, case_id, detector, rule, org_unit, course_id, \
    window_start, window_end, weighted_severity, day";
pub(crate) const CLAIM_COLS: &str = "case_id, credit_id, user_id, course_id, completed_at, \
    credits_value, flag_ids, decision, decided_at";
pub(crate) const AUDIT_COLS: &str =
    "seq, at, actor, action, case_id, before_state, after_state, reason, detail, prev_hash, hash";

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn statements(sql: &str) -> impl Iterator<Item = String> + '_ {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

fn checksum(sql: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Review {
    /// Connects (`sqlite://PATH?mode=rwc` or `postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Review> {
        Review::open_at(url, MIGRATIONS.len()).await
    }

    /// [`Review::open`] migrating only up to the first `versions` migrations (to test upgrades
    /// from an older schema).
    pub async fn open_at(url: &str, versions: usize) -> Result<Review> {
        sqlx::any::install_default_drivers();
        let name = redact(url);
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or(rest);
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::Schema(format!("creating {} for {name}: {e}", dir.display()))
                })?;
            }
        } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(Error::Invalid(format!(
                "review database `{name}`: expected a `sqlite://PATH` or `postgres://…` URL"
            )));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .ctx(|| format!("connecting to {name}"))?;
        if url.starts_with("sqlite://") {
            // Readers never wait for a writer in WAL mode; a writer waits for another.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .ctx(|| format!("{name}: setting WAL mode"))?;
        }
        let bytewise = if url.starts_with("sqlite://") {
            BYTEWISE_SQLITE
        } else {
            BYTEWISE_POSTGRES
        };
        let sqlite = url.starts_with("sqlite://");
        let review = Review {
            pool,
            name,
            bytewise,
            find_fn: if sqlite { "instr" } else { "strpos" },
        };
        review.migrate(versions).await?;
        Ok(review)
    }

    /// The database, for messages (password hidden).
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn migrate(&self, versions: usize) -> Result<()> {
        let name = &self.name;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .ctx(|| format!("{name}: creating schema_migrations"))?;
        let applied: Vec<(i64, String)> =
            sqlx::query("SELECT version, checksum FROM schema_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("{name}: reading schema_migrations"))?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()
                .ctx(|| format!("{name}: reading schema_migrations"))?;
        let known = MIGRATIONS.len() as i64;
        if let Some((v, _)) = applied.iter().find(|(v, _)| *v > known) {
            return Err(Error::Schema(format!(
                "{name} has schema version {v}, newer than this creditguard knows ({known}): upgrade creditguard"
            )));
        }
        for &(version, description, sql) in &MIGRATIONS[..versions.min(MIGRATIONS.len())] {
            let sum = checksum(sql);
            if let Some((_, have)) = applied.iter().find(|(v, _)| *v == version) {
                if *have != sum {
                    return Err(Error::Schema(format!(
                        "{name}: migration {version} ({description}) was applied from a different text than this creditguard's"
                    )));
                }
                continue;
            }
            let mut tx = self
                .pool
                .begin()
                .await
                .ctx(|| format!("{name}: migration {version}"))?;
            let rules_of_case = if self.find_fn == "instr" {
                RULES_OF_CASE_SQLITE
            } else {
                RULES_OF_CASE_POSTGRES
            };
            let sql = sql
                .replace("{bytewise}", self.bytewise)
                .replace("{rules_of_case}", rules_of_case);
            for stmt in statements(&sql) {
                sqlx::query(&stmt)
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("{name}: migration {version} ({description})"))?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, description, checksum, applied_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(version)
            .bind(description)
            .bind(&sum)
            .bind(crate::now_us())
            .execute(&mut *tx)
            .await
            .ctx(|| format!("{name}: recording migration {version}"))?;
            tx.commit()
                .await
                .ctx(|| format!("{name}: migration {version}"))?;
            tracing::info!(database = %name, version, description, "Applied migration.");
        }
        Ok(())
    }

    /// The schema versions applied, in order.
    pub async fn schema_versions(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: reading schema_migrations", self.name))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .ctx(|| format!("{}: reading schema_migrations", self.name))
    }

    /// One case, or [`Error::UnknownCase`].
    pub async fn case(&self, case_id: &str) -> Result<CaseRow> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("{}: connecting", self.name))?;
        load_case(&mut conn, case_id).await
    }

    /// Cases matching `filter`, highest risk first, then oldest first: the queue over every org
    /// unit (one implementation of the filters).
    pub async fn list(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>> {
        let page = self
            .queue(&crate::QueueQuery {
                scope: crate::Scope(vec![crate::accounts::ALL_UNITS.to_string()]),
                statuses: filter.statuses.clone(),
                org_unit: filter.org_unit.clone(),
                rule: filter.rule.clone(),
                user_id: filter.user_id.clone(),
                assignee: filter.assignee.clone().map(Some),
                min_risk: filter.min_risk,
                opened_before: None,
                limit: filter.limit.unwrap_or(i64::MAX),
                offset: 0,
            })
            .await?;
        Ok(page.cases)
    }

    /// A case with its flags, claims, history and the learner's other cases.
    pub async fn show(&self, case_id: &str) -> Result<CaseDetail> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("{}: connecting", self.name))?;
        let case = load_case(&mut conn, case_id).await?;
        let flags = case_flags(&mut conn, case_id).await?;
        let claims = case_claims(&mut conn, case_id).await?;
        let history = fetch_audit(
            &mut conn,
            &format!("SELECT {AUDIT_COLS} FROM audit WHERE case_id = $1 ORDER BY seq"),
            Some(case_id),
        )
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLS} FROM cases WHERE user_id = $1 AND case_id <> $2 ORDER BY opened_at DESC, case_id"
        ))
        .bind(&case.user_id)
        .bind(case_id)
        .fetch_all(&mut *conn)
        .await
        .ctx(|| format!("{}: reading related cases", self.name))?;
        let related = rows.iter().map(case_row).collect::<Result<_>>()?;
        Ok(CaseDetail {
            case,
            flags,
            claims,
            history,
            related,
        })
    }

    /// Audit records with `from <= at < to` (UTC µs), in order.
    pub async fn audit_records(&self, from: i64, to: i64) -> Result<Vec<AuditRecord>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("{}: connecting", self.name))?;
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE at >= $1 AND at < $2 ORDER BY seq"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await
        .ctx(|| format!("{}: reading the audit trail", self.name))?;
        rows.iter().map(audit_row).collect()
    }

    /// Checks the whole audit trail's hash chain.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("{}: connecting", self.name))?;
        let records = fetch_audit(
            &mut conn,
            &format!("SELECT {AUDIT_COLS} FROM audit ORDER BY seq"),
            None,
        )
        .await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await
            .ctx(|| format!("{}: reading the audit head", self.name))?;
        let (seq, hash): (i64, String) = (
            head.try_get(0).ctx(|| "audit head".into())?,
            head.try_get(1).ctx(|| "audit head".into())?,
        );
        Ok(crate::audit::verify(&records, seq, &hash))
    }

    /// The stream records not yet acknowledged by the results topic, oldest first:
    /// (record id, key, JSON).
    pub async fn unpublished(&self) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT record_id, record_key, record FROM outbox WHERE published_at IS NULL ORDER BY seq, pos, record_id",
        )
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("{}: reading the outbox", self.name))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .ctx(|| format!("{}: reading the outbox", self.name))
    }

    /// Marks outbox records as acknowledged.
    pub async fn mark_published(&self, ids: &[String]) -> Result<()> {
        let now = crate::now_us();
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx(|| format!("{}: marking records published", self.name))?;
        for id in ids {
            sqlx::query("UPDATE outbox SET published_at = $1 WHERE record_id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .ctx(|| format!("{}: marking records published", self.name))?;
        }
        tx.commit()
            .await
            .ctx(|| format!("{}: marking records published", self.name))
    }

    /// The stream records (JSON) of decisions taken on `day`, in order.
    pub async fn outbox_of_day(&self, day: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT record FROM outbox WHERE day = $1 ORDER BY seq, pos, record_id")
                .bind(day)
                .fetch_all(&self.pool)
                .await
                .ctx(|| format!("{}: reading the outbox", self.name))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .ctx(|| format!("{}: reading the outbox", self.name))
    }

    /// The decisions taken on `day` (UTC), in order.
    pub async fn decisions_of_day(&self, day: i64) -> Result<Vec<creditguard_contract::Decision>> {
        let rows = sqlx::query(
            "SELECT record FROM decisions WHERE day = $1 ORDER BY decided_at, decision_id",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("{}: reading decisions", self.name))?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get(0).ctx(|| "decision".into())?;
                serde_json::from_str(&json)
                    .map_err(|e| Error::Schema(format!("a stored decision is not valid JSON: {e}")))
            })
            .collect()
    }
}

fn get<'r, T>(r: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    r.try_get(col).ctx(|| format!("reading column `{col}`"))
}

pub(crate) fn case_row(r: &AnyRow) -> Result<CaseRow> {
    let status: String = get(r, "status")?;
    Ok(CaseRow {
        case_id: get(r, "case_id")?,
        user_id: get(r, "user_id")?,
        org_unit: get(r, "org_unit")?,
        status: CaseStatus::parse(&status)
            .ok_or_else(|| Error::Schema(format!("unknown case status `{status}`")))?,
        assignee: get(r, "assignee")?,
        risk: get(r, "risk")?,
        first_flag_at: get(r, "first_flag_at")?,
        last_flag_at: get(r, "last_flag_at")?,
        previous_case_id: get(r, "previous_case_id")?,
        opened_at: get(r, "opened_at")?,
        updated_at: get(r, "updated_at")?,
        decided_at: get(r, "decided_at")?,
        decided_by: get(r, "decided_by")?,
        decision_reason: get(r, "decision_reason")?,
        version: get(r, "version")?,
    })
}

pub(crate) fn flag_row(r: &AnyRow) -> Result<CaseFlag> {
    Ok(CaseFlag {
        flag_id: get(r, "flag_id")?,
        case_id: get(r, "case_id")?,
        detector: get(r, "detector")?,
        rule: get(r, "rule")?,
        org_unit: get(r, "org_unit")?,
        course_id: get(r, "course_id")?,
        window_start: get(r, "window_start")?,
        window_end: get(r, "window_end")?,
        weighted_severity: get(r, "weighted_severity")?,
        day: get(r, "day")?,
    })
}

pub(crate) fn claim_row(r: &AnyRow) -> Result<CaseClaim> {
    let flags: String = get(r, "flag_ids")?;
    let decision: Option<String> = get(r, "decision")?;
    Ok(CaseClaim {
        case_id: get(r, "case_id")?,
        credit_id: get(r, "credit_id")?,
        user_id: get(r, "user_id")?,
        course_id: get(r, "course_id")?,
        completed_at: get(r, "completed_at")?,
        credits_value: get(r, "credits_value")?,
        flag_ids: serde_json::from_str(&flags)
            .map_err(|e| Error::Schema(format!("case_claims.flag_ids: {e}")))?,
        decision: decision.as_deref().and_then(ClaimDecision::parse),
        decided_at: get(r, "decided_at")?,
    })
}

pub(crate) fn audit_row(r: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: get(r, "seq")?,
        at: get(r, "at")?,
        actor: get(r, "actor")?,
        action: get(r, "action")?,
        case_id: get(r, "case_id")?,
        before_state: get(r, "before_state")?,
        after_state: get(r, "after_state")?,
        reason: get(r, "reason")?,
        detail: get(r, "detail")?,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

async fn fetch_audit(
    conn: &mut AnyConnection,
    sql: &str,
    case_id: Option<&str>,
) -> Result<Vec<AuditRecord>> {
    let mut q = sqlx::query(sql);
    if let Some(c) = case_id {
        q = q.bind(c.to_string());
    }
    let rows = q
        .fetch_all(&mut *conn)
        .await
        .ctx(|| "reading the audit trail".into())?;
    rows.iter().map(audit_row).collect()
}

pub(crate) async fn load_case(conn: &mut AnyConnection, case_id: &str) -> Result<CaseRow> {
    let row = sqlx::query(&format!("SELECT {CASE_COLS} FROM cases WHERE case_id = $1"))
        .bind(case_id)
        .fetch_optional(&mut *conn)
        .await
        .ctx(|| format!("reading case {case_id}"))?;
    match row {
        Some(r) => case_row(&r),
        None => Err(Error::UnknownCase(case_id.to_string())),
    }
}

pub(crate) async fn case_flags(conn: &mut AnyConnection, case_id: &str) -> Result<Vec<CaseFlag>> {
    let rows = sqlx::query(&format!(
        "SELECT {FLAG_COLS} FROM case_flags WHERE case_id = $1 ORDER BY window_start, flag_id"
    ))
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await
    .ctx(|| format!("reading the flags of case {case_id}"))?;
    rows.iter().map(flag_row).collect()
}

pub(crate) async fn case_claims(conn: &mut AnyConnection, case_id: &str) -> Result<Vec<CaseClaim>> {
    let rows = sqlx::query(&format!(
        "SELECT {CLAIM_COLS} FROM case_claims WHERE case_id = $1 ORDER BY completed_at, credit_id"
    ))
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await
    .ctx(|| format!("reading the claims of case {case_id}"))?;
    rows.iter().map(claim_row).collect()
}

/// Takes the writers' lock for the rest of the transaction: every write starts here, so writers
/// queue on both back ends (SQLite's write lock, PostgreSQL's row lock) and the audit chain has
/// one next record at a time.
pub(crate) async fn lock_writers(conn: &mut AnyConnection) -> Result<()> {
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *conn)
        .await
        .ctx(|| "taking the writers' lock".into())?;
    Ok(())
}

/// What one audit record says; `seq`, hashes and the chain are filled in by [`append_audit`].
pub(crate) struct NewAudit<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub case_id: Option<&'a str>,
    pub before_state: Option<&'a str>,
    pub after_state: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub detail: serde_json::Value,
}

/// Appends one record to the chain (after [`lock_writers`] in the same transaction).
pub(crate) async fn append_audit(conn: &mut AnyConnection, new: NewAudit<'_>) -> Result<i64> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .ctx(|| "reading the audit head".into())?;
    let (seq, prev): (i64, String) = (get(&head, "seq")?, get(&head, "hash")?);
    let mut rec = AuditRecord {
        seq: seq + 1,
        at: new.at,
        actor: new.actor.to_string(),
        action: new.action.to_string(),
        case_id: new.case_id.map(str::to_string),
        before_state: new.before_state.map(str::to_string),
        after_state: new.after_state.map(str::to_string),
        reason: new.reason.map(str::to_string),
        detail: new.detail.to_string(),
        prev_hash: if seq == 0 { GENESIS.into() } else { prev },
        hash: String::new(),
    };
    rec.hash = hash_record(&rec);
    sqlx::query(&format!(
        "INSERT INTO audit ({AUDIT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(rec.seq)
    .bind(rec.at)
    .bind(&rec.actor)
    .bind(&rec.action)
    .bind(rec.case_id.clone())
    .bind(rec.before_state.clone())
    .bind(rec.after_state.clone())
    .bind(rec.reason.clone())
    .bind(&rec.detail)
    .bind(&rec.prev_hash)
    .bind(&rec.hash)
    .execute(&mut *conn)
    .await
    .ctx(|| "appending an audit record".into())?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(rec.seq)
        .bind(&rec.hash)
        .execute(&mut *conn)
        .await
        .ctx(|| "advancing the audit head".into())?;
    Ok(rec.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_migrations_split() {
        assert_eq!(
            redact("postgres://cg:s3cret@db:5432/review"),
            "postgres://cg:***@db:5432/review"
        );
        assert_eq!(
            redact("sqlite:///x/review.sqlite"),
            "sqlite:///x/review.sqlite"
        );
        let n = statements(MIGRATIONS[0].2).count();
        assert!(n >= 10, "{n}");
        assert!(statements(MIGRATIONS[0].2).all(|s| !s.contains("--")));
    }
}

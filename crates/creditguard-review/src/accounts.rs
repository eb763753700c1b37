//! Who may use the review web app and what they may see: accounts with a role and org-unit
//! scopes, sessions, failed logins (for the lockout), the queue and the audit trail read within a
//! scope, and the audit records of looking at a learner (case views, exports).
//!
//! Passwords arrive here already hashed (the web crate hashes with Argon2id); session tokens are
//! stored as their SHA-256, so a copy of the database opens no session. Every change to an
//! account is an audit record like any change to a case.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::db::{append_audit, audit_row, case_row, lock_writers, NewAudit, AUDIT_COLS, CASE_COLS};
use crate::model::{AuditRecord, CaseRow, CaseStatus};
use crate::{Context as _, Error, Result, Review};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works the cases of its org-unit subtrees: views, assigns to itself, comments, decides.
    Reviewer,
    /// A reviewer who may also reassign cases to others, reopen decided cases on appeal and
    /// decide appealed cases.
    Lead,
    /// Read-only: the audit trail (and the cases of its scopes, if it has any).
    Auditor,
    /// Manages accounts; sees no learner data.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Reviewer, Role::Lead, Role::Auditor, Role::Admin];

    /// Whether the role may see the employee behind a pseudonym (inside its scope): those who
    /// work and decide cases. Auditors check the process and see pseudonyms; admins no learners.
    pub fn may_reidentify(self) -> bool {
        matches!(self, Role::Reviewer | Role::Lead)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Lead => "lead",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role must have at least one scope (reviewers and leads work a branch).
    pub fn needs_scope(self) -> bool {
        matches!(self, Role::Reviewer | Role::Lead)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope that stands for every org unit (company-wide HR), including cases without one.
pub const ALL_UNITS: &str = "*";

/// Org-unit subtrees: `HQ/East` covers `HQ/East` and `HQ/East/Sales`, not `HQ/Eastern`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scope(pub Vec<String>);

impl Scope {
    /// Whether a record of this org unit is inside the scope (no org unit: only [`ALL_UNITS`]).
    pub fn covers(&self, org_unit: Option<&str>) -> bool {
        self.0.iter().any(|s| {
            s == ALL_UNITS
                || org_unit.is_some_and(|o| {
                    o == s
                        || (o.len() > s.len()
                            && o.starts_with(s.as_str())
                            && o[s.len()..].starts_with('/'))
                })
        })
    }

    pub fn is_everything(&self) -> bool {
        self.0.iter().any(|s| s == ALL_UNITS)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks an org-unit scope as typed by an administrator.
pub fn check_scope(scope: &str) -> Result<String> {
    let s = scope.trim();
    if s == ALL_UNITS {
        return Ok(s.to_string());
    }
    if s.is_empty() || s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        return Err(Error::Invalid(format!(
            "scope `{scope}`: expected an org unit such as `HQ/East` (no leading, trailing or doubled `/`) or `{ALL_UNITS}` for every unit"
        )));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(Error::Invalid(format!(
            "scope `{}`: control characters are not allowed",
            s.escape_debug()
        )));
    }
    Ok(s.to_string())
}

/// Checks a username: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_username(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name)
    } else {
        Err(Error::Invalid(format!(
            "username `{}`: use 1–64 letters, digits, `.`, `_`, `-` or `@`",
            name.escape_debug()
        )))
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub username: String,
    pub role: Role,
    pub scope: Scope,
    pub disabled: bool,
    /// PHC string (Argon2id).
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A live session with its account.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub account: Account,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// Which cases the web queue shows. Every value is bound as a query parameter.
#[derive(Debug, Clone, Default)]
pub struct QueueQuery {
    /// The viewer's scope: only cases inside it, always.
    pub scope: Scope,
    /// Empty: every status.
    pub statuses: Vec<CaseStatus>,
    /// An org-unit subtree inside the scope.
    pub org_unit: Option<String>,
    pub rule: Option<String>,
    pub user_id: Option<String>,
    /// `Some(None)`: unassigned cases; `Some(Some(name))`: that reviewer's.
    pub assignee: Option<Option<String>>,
    pub min_risk: Option<f64>,
    /// Only cases opened at or before this time (UTC µs): "older than N days".
    pub opened_before: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of the queue.
#[derive(Debug, Clone, Default)]
pub struct QueuePage {
    pub cases: Vec<CaseRow>,
    /// Cases matching the query (all pages).
    pub total: i64,
    /// Per status, the cases matching everything but the status filter.
    pub by_status: Vec<(CaseStatus, i64)>,
}

/// Which audit records the audit page shows.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub case_id: Option<String>,
    /// `from <= at < to` (UTC µs).
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
}

const ACCOUNT_COLS: &str =
    "username, password_hash, role, scopes, disabled, created_at, updated_at";

fn account_row(r: &AnyRow) -> Result<Account> {
    let get_s = |c: &str| -> Result<String> { r.try_get(c).ctx(|| format!("accounts.{c}")) };
    let role = get_s("role")?;
    let scopes = get_s("scopes")?;
    let disabled: i64 = r.try_get("disabled").ctx(|| "accounts.disabled".into())?;
    Ok(Account {
        username: get_s("username")?,
        role: Role::parse(&role).ok_or_else(|| Error::Schema(format!("unknown role `{role}`")))?,
        scope: Scope(
            serde_json::from_str(&scopes)
                .map_err(|e| Error::Schema(format!("accounts.scopes: {e}")))?,
        ),
        disabled: disabled != 0,
        password_hash: get_s("password_hash")?,
        created_at: r
            .try_get("created_at")
            .ctx(|| "accounts.created_at".into())?,
        updated_at: r
            .try_get("updated_at")
            .ctx(|| "accounts.updated_at".into())?,
    })
}

/// A parameter list: `push` binds a value and returns its placeholder.
#[derive(Default)]
struct Params(Vec<Param>);

enum Param {
    Text(String),
    Int(i64),
    Float(f64),
}

impl Params {
    fn text(&mut self, v: impl Into<String>) -> String {
        self.0.push(Param::Text(v.into()));
        format!("${}", self.0.len())
    }
    fn int(&mut self, v: i64) -> String {
        self.0.push(Param::Int(v));
        format!("${}", self.0.len())
    }
    fn float(&mut self, v: f64) -> String {
        self.0.push(Param::Float(v));
        format!("${}", self.0.len())
    }
    fn bind<'q>(
        &self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for p in &self.0 {
            q = match p {
                Param::Text(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
                Param::Float(f) => q.bind(*f),
            };
        }
        q
    }
}

/// `col` is `unit` or below it, as SQL without LIKE (whose wildcards and, on SQLite, case
/// folding would widen the match): a byte-wise range from `unit` to `unit0` (`0` follows `/`),
/// which an index on the column answers, narrowed to equality or a prefix compare of `unit/`.
fn subtree_sql(col: &str, unit: &str, bytewise: &str, p: &mut Params) -> String {
    let prefix = format!("{unit}/");
    let n = prefix.chars().count() as i64;
    let (a, b, c, d) = (
        p.text(unit),
        p.text(format!("{unit}0")),
        p.int(n),
        p.text(prefix),
    );
    format!(
        "({col} COLLATE {bytewise} >= {a} AND {col} COLLATE {bytewise} < {b} \
         AND ({col} = {a} OR substr({col}, 1, CAST({c} AS INTEGER)) = {d}))"
    )
}

fn scope_sql(scope: &Scope, bytewise: &str, p: &mut Params) -> String {
    if scope.is_everything() {
        return "1 = 1".into();
    }
    if scope.is_empty() {
        return "1 = 0".into();
    }
    let parts: Vec<String> = scope
        .0
        .iter()
        .map(|u| subtree_sql("c.org_unit", u, bytewise, p))
        .collect();
    format!("({})", parts.join(" OR "))
}

impl Review {
    async fn account_change(
        &self,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
        now: i64,
        change: impl for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<()>> + Send + 'c>,
        >,
    ) -> Result<()> {
        self.audited(actor, action, None, detail, now, change)
            .await
            .map(|_| ())
    }

    /// Runs `change` and appends its audit record in one transaction behind the writers' lock;
    /// returns the record's sequence number. Every audited change outside a case's lifecycle
    /// goes through here.
    pub(crate) async fn audited(
        &self,
        actor: &str,
        action: &str,
        case_id: Option<&str>,
        detail: serde_json::Value,
        now: i64,
        change: impl for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<()>> + Send + 'c>,
        >,
    ) -> Result<i64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx(|| format!("{}: {action}", self.name))?;
        lock_writers(&mut tx).await?;
        change(&mut tx).await?;
        let seq = append_audit(
            &mut tx,
            NewAudit {
                at: now,
                actor,
                action,
                case_id,
                before_state: None,
                after_state: None,
                reason: None,
                detail,
            },
        )
        .await?;
        tx.commit()
            .await
            .ctx(|| format!("{}: {action}", self.name))?;
        Ok(seq)
    }

    /// Creates an account (an audit record `account_add`). Refuses an existing username, a
    /// reviewer or lead without a scope, and malformed scopes.
    pub async fn add_account(
        &self,
        username: &str,
        role: Role,
        scopes: &[String],
        password_hash: &str,
        actor: &str,
        now: i64,
    ) -> Result<Account> {
        let username = check_username(username)?.to_string();
        let scopes: Vec<String> = scopes
            .iter()
            .map(|s| check_scope(s))
            .collect::<Result<_>>()?;
        if role.needs_scope() && scopes.is_empty() {
            return Err(Error::Invalid(format!(
                "a {role} needs at least one --scope (an org unit such as `HQ/East`, or `{ALL_UNITS}`)"
            )));
        }
        if self.account(&username).await?.is_some() {
            return Err(Error::Invalid(format!(
                "account `{username}` exists already"
            )));
        }
        let scopes_json = serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into());
        let hash = password_hash.to_string();
        let user = username.clone();
        self.account_change(
            actor,
            "account_add",
            json!({"username": username, "role": role.as_str(), "scopes": scopes}),
            now,
            move |tx| {
                Box::pin(async move {
                    sqlx::query(&format!(
                        "INSERT INTO accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, 0, $5, $5)"
                    ))
                    .bind(user.clone())
                    .bind(hash)
                    .bind(role.as_str())
                    .bind(scopes_json)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("adding account {user}"))?;
                    Ok(())
                })
            },
        )
        .await?;
        self.account(&username)
            .await?
            .ok_or_else(|| Error::Schema(format!("account `{username}` vanished after adding it")))
    }

    /// An account by name.
    pub async fn account(&self, username: &str) -> Result<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("{}: reading account {username}", self.name))?;
        row.as_ref().map(account_row).transpose()
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLS} FROM accounts ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("{}: reading accounts", self.name))?;
        rows.iter().map(account_row).collect()
    }

    async fn existing(&self, username: &str) -> Result<Account> {
        self.account(username)
            .await?
            .ok_or_else(|| Error::Invalid(format!("no account `{username}`")))
    }

    /// Replaces an account's password and ends its sessions (`account_password`).
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        self.existing(username).await?;
        let (user, hash) = (username.to_string(), password_hash.to_string());
        self.account_change(
            actor,
            "account_password",
            json!({"username": username}),
            now,
            move |tx| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE username = $3",
                    )
                    .bind(hash)
                    .bind(now)
                    .bind(user.clone())
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("setting the password of {user}"))?;
                    end_sessions(tx, &user).await
                })
            },
        )
        .await
    }

    /// Disables an account and ends its sessions (`account_disable`); it can no longer log in.
    pub async fn disable_account(&self, username: &str, actor: &str, now: i64) -> Result<()> {
        self.existing(username).await?;
        let user = username.to_string();
        self.account_change(
            actor,
            "account_disable",
            json!({"username": username}),
            now,
            move |tx| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE accounts SET disabled = 1, updated_at = $1 WHERE username = $2",
                    )
                    .bind(now)
                    .bind(user.clone())
                    .execute(&mut *tx)
                    .await
                    .ctx(|| format!("disabling {user}"))?;
                    end_sessions(tx, &user).await
                })
            },
        )
        .await
    }

    /// Stores a new session (`token_hash` = SHA-256 of the cookie's token).
    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        address: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, username, csrf, created_at, expires_at, address) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(username)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .bind(address)
        .execute(&self.pool)
        .await
        .ctx(|| format!("{}: storing a session of {username}", self.name))?;
        Ok(())
    }

    /// The live session of a token hash: not expired, its account not disabled.
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<SessionInfo>> {
        let cols: Vec<String> = ACCOUNT_COLS.split(", ").map(|c| format!("a.{c}")).collect();
        let row = sqlx::query(&format!(
            "SELECT {}, s.csrf, s.expires_at FROM sessions s JOIN accounts a ON a.username = s.username \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled = 0",
            cols.join(", ")
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("{}: reading a session", self.name))?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionInfo {
            account: account_row(&r)?,
            csrf: r.try_get("csrf").ctx(|| "sessions.csrf".into())?,
            expires_at: r
                .try_get("expires_at")
                .ctx(|| "sessions.expires_at".into())?,
        }))
    }

    /// Ends a session (logout), and removes expired ones.
    pub async fn end_session(&self, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2")
            .bind(token_hash)
            .bind(now)
            .execute(&self.pool)
            .await
            .ctx(|| format!("{}: ending a session", self.name))?;
        Ok(())
    }

    /// Records a failed login of `username` (as typed) from `address`.
    pub async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<()> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        sqlx::query(
            "INSERT INTO login_failures (id, username, address, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(creditguard_contract::stable_id(&[
            username,
            address,
            &now.to_string(),
            &std::process::id().to_string(),
            &seq.to_string(),
        ]))
        .bind(username)
        .bind(address)
        .bind(now)
        .execute(&self.pool)
        .await
        .ctx(|| format!("{}: recording a failed login", self.name))?;
        // Failures older than any lockout window count for nothing: keep the table small.
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(now - 30 * creditguard_contract::time::DAY_US)
            .execute(&self.pool)
            .await
            .ctx(|| format!("{}: pruning failed logins", self.name))?;
        Ok(())
    }

    /// Failed logins since `since`: (of this username, from this address).
    pub async fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: i64,
    ) -> Result<(i64, i64)> {
        let count = |sql: &'static str, v: &str| {
            let v = v.to_string();
            async move {
                let r = sqlx::query(sql)
                    .bind(v)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await
                    .ctx(|| format!("{}: counting failed logins", self.name))?;
                r.try_get::<i64, _>(0).ctx(|| "login_failures".into())
            }
        };
        Ok((
            count(
                "SELECT COUNT(*) FROM login_failures WHERE username = $1 AND at >= $2",
                username,
            )
            .await?,
            count(
                "SELECT COUNT(*) FROM login_failures WHERE address = $1 AND at >= $2",
                address,
            )
            .await?,
        ))
    }

    /// After a successful login: the account's failures no longer count.
    pub async fn clear_login_failures(&self, username: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .ctx(|| format!("{}: clearing failed logins", self.name))?;
        Ok(())
    }

    /// Records that `actor` looked at something (`view_case`, `export_case`, `login`, …): an
    /// audit record like every change, so who looked at whom, and when, is on the chain.
    pub async fn record_access(
        &self,
        actor: &str,
        action: &str,
        case_id: Option<&str>,
        detail: serde_json::Value,
        now: i64,
    ) -> Result<()> {
        self.audited(actor, action, case_id, detail, now, |_| {
            Box::pin(async { Ok(()) })
        })
        .await
        .map(|_| ())
    }

    /// One page of the queue inside a scope, highest risk first, then oldest.
    pub async fn queue(&self, q: &QueueQuery) -> Result<QueuePage> {
        let mut p = Params::default();
        let mut base = vec![scope_sql(&q.scope, self.bytewise, &mut p)];
        if let Some(ou) = &q.org_unit {
            base.push(subtree_sql("c.org_unit", ou, self.bytewise, &mut p));
        }
        if let Some(rule) = &q.rule {
            // `rules` is `,rule,rule,`: an exact match of one rule, no wildcards (a rule name
            // has no comma, so a value with one matches nothing).
            if rule.contains(',') {
                base.push("1 = 0".to_string());
            } else {
                let a = p.text(format!(",{rule},"));
                base.push(format!("{}(c.rules, {a}) > 0", self.find_fn));
            }
        }
        if let Some(u) = &q.user_id {
            base.push(format!("c.user_id = {}", p.text(u.clone())));
        }
        match &q.assignee {
            Some(Some(a)) => base.push(format!("c.assignee = {}", p.text(a.clone()))),
            Some(None) => base.push("c.assignee IS NULL".into()),
            None => {}
        }
        if let Some(r) = q.min_risk {
            base.push(format!("c.risk >= {}", p.float(r)));
        }
        if let Some(t) = q.opened_before {
            base.push(format!("c.opened_at <= {}", p.int(t)));
        }
        let where_base = base.join(" AND ");
        let counts_sql =
            format!("SELECT c.status, COUNT(*) FROM cases c WHERE {where_base} GROUP BY c.status");
        let rows = p
            .bind(sqlx::query(&counts_sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: counting the queue", self.name))?;
        let mut by_status = Vec::new();
        for r in &rows {
            let s: String = r.try_get(0).ctx(|| "queue counts".into())?;
            let n: i64 = r.try_get(1).ctx(|| "queue counts".into())?;
            if let Some(s) = CaseStatus::parse(&s) {
                by_status.push((s, n));
            }
        }
        by_status.sort_by_key(|(s, _)| CaseStatus::ALL.iter().position(|a| a == s));
        let total = by_status
            .iter()
            .filter(|(s, _)| q.statuses.is_empty() || q.statuses.contains(s))
            .map(|(_, n)| n)
            .sum();
        let mut where_all = where_base;
        if !q.statuses.is_empty() {
            let ps: Vec<String> = q.statuses.iter().map(|s| p.text(s.as_str())).collect();
            where_all += &format!(" AND c.status IN ({})", ps.join(", "));
        }
        let cols: Vec<String> = CASE_COLS
            .split(", ")
            .map(|c| format!("c.{}", c.trim()))
            .collect();
        // The page's ids come from the index alone; only its rows are read from the table.
        let order = "ORDER BY c.risk DESC, c.opened_at ASC, c.case_id ASC";
        let sql = format!(
            "SELECT {} FROM cases c WHERE c.case_id IN (SELECT c.case_id FROM cases c \
             WHERE {where_all} {order} LIMIT {} OFFSET {}) {order}",
            cols.join(", "),
            q.limit.max(1),
            q.offset.max(0)
        );
        let rows = p
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: reading the queue", self.name))?;
        let cases = rows.iter().map(case_row).collect::<Result<_>>()?;
        Ok(QueuePage {
            cases,
            total,
            by_status,
        })
    }

    /// The distinct rules of the flags of cases (for the queue's rule filter).
    pub async fn rules(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT rule FROM case_flags ORDER BY rule")
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: reading rules", self.name))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .ctx(|| "rules".into())
    }

    /// Audit records matching `q`, newest first.
    pub async fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let mut p = Params::default();
        let mut w = vec!["1 = 1".to_string()];
        if let Some(a) = &q.actor {
            w.push(format!("actor = {}", p.text(a.clone())));
        }
        if let Some(a) = &q.action {
            w.push(format!("action = {}", p.text(a.clone())));
        }
        if let Some(c) = &q.case_id {
            w.push(format!("case_id = {}", p.text(c.clone())));
        }
        if let Some(f) = q.from {
            w.push(format!("at >= {}", p.int(f)));
        }
        if let Some(t) = q.to {
            w.push(format!("at < {}", p.int(t)));
        }
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit WHERE {} ORDER BY seq DESC LIMIT {}",
            w.join(" AND "),
            q.limit.clamp(1, 5000)
        );
        let rows = p
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: searching the audit trail", self.name))?;
        rows.iter().map(audit_row).collect()
    }

    /// Cases per org unit and status, with the oldest open time of each (for the overview).
    pub async fn case_counts(
        &self,
        scope: &Scope,
    ) -> Result<Vec<(Option<String>, CaseStatus, i64, i64)>> {
        let mut p = Params::default();
        let sql = format!(
            "SELECT c.org_unit, c.status, COUNT(*), MIN(c.opened_at) FROM cases c WHERE {} GROUP BY c.org_unit, c.status",
            scope_sql(scope, self.bytewise, &mut p)
        );
        let rows = p
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: counting cases", self.name))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let status: String = r.try_get(1).ctx(|| "case counts".into())?;
            let Some(status) = CaseStatus::parse(&status) else {
                continue;
            };
            out.push((
                r.try_get(0).ctx(|| "case counts".into())?,
                status,
                r.try_get(2).ctx(|| "case counts".into())?,
                r.try_get(3).ctx(|| "case counts".into())?,
            ));
        }
        Ok(out)
    }

    /// Decided claims of cases inside a scope per org unit: (org unit, `released` or
    /// `cancelled`, claims, credits).
    pub async fn claim_decisions(
        &self,
        scope: &Scope,
    ) -> Result<Vec<(Option<String>, String, i64, f64)>> {
        let mut p = Params::default();
        let sql = format!(
            "SELECT c.org_unit, k.decision, COUNT(*), SUM(k.credits_value) FROM case_claims k \
             JOIN cases c ON c.case_id = k.case_id WHERE k.decision IS NOT NULL AND {} \
             GROUP BY c.org_unit, k.decision",
            scope_sql(scope, self.bytewise, &mut p)
        );
        let rows = p
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: counting decided claims", self.name))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<_, sqlx::Error>>()
            .ctx(|| "decided claims".into())
    }

    /// Flags of cases inside a scope per rule and week (Monday-based, days since the epoch of
    /// the week's first day): (rule, week, flags).
    pub async fn flags_per_week(&self, scope: &Scope) -> Result<Vec<(String, i64, i64)>> {
        let mut p = Params::default();
        // Day 0 (1970-01-01) was a Thursday: (day + 3) / 7 counts Monday-based weeks.
        let sql = format!(
            "SELECT f.rule, ((f.day + 3) / 7) * 7 - 3 AS week, COUNT(*) FROM case_flags f \
             JOIN cases c ON c.case_id = f.case_id WHERE {} GROUP BY f.rule, ((f.day + 3) / 7) * 7 - 3",
            scope_sql(scope, self.bytewise, &mut p)
        );
        let rows = p
            .bind(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("{}: counting flags per week", self.name))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .ctx(|| "flags per week".into())
    }
}

async fn end_sessions(tx: &mut sqlx::AnyConnection, username: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE username = $1")
        .bind(username)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("ending the sessions of {username}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_subtrees_only() {
        let s = Scope(vec!["HQ/East".into()]);
        assert!(s.covers(Some("HQ/East")));
        assert!(s.covers(Some("HQ/East/Sales")));
        assert!(!s.covers(Some("HQ/Eastern")));
        assert!(!s.covers(Some("HQ")));
        assert!(!s.covers(None));
        assert!(Scope(vec![ALL_UNITS.into()]).covers(None));
        assert!(!Scope::default().covers(Some("HQ/East")));
        assert!(check_scope("HQ/East/").is_err());
        assert!(check_scope("").is_err());
        assert_eq!(check_scope(" HQ ").unwrap(), "HQ");
        assert!(check_username("hr.li@corp").is_ok());
        assert!(check_username("a b").is_err() && check_username("<x>").is_err());
    }
}

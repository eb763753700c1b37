-- Accounts of the review web app, their sessions, failed logins (for the lockout), and indexes
-- for the web queue over many cases. Times are UTC microseconds (BIGINT).
CREATE TABLE accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    scopes TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Only the SHA-256 of a session token is stored: a copy of this table opens no session.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES accounts (username),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    address TEXT
);
CREATE INDEX sessions_user ON sessions (username);

CREATE TABLE login_failures (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_user ON login_failures (username, at);
CREATE INDEX login_failures_address ON login_failures (address, at);

CREATE INDEX cases_queue ON cases (risk, opened_at);
CREATE INDEX cases_org_unit ON cases (org_unit);
CREATE INDEX case_flags_rule ON case_flags (rule, case_id);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_at ON audit (at)

-- Cases that live across scoring runs, the flags and withheld claims they hold, and the
-- hash-chained audit trail. Times are UTC microseconds (BIGINT); the same text runs on SQLite and
-- PostgreSQL.
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    org_unit TEXT,
    status TEXT NOT NULL,
    assignee TEXT,
    risk DOUBLE PRECISION NOT NULL,
    first_flag_at BIGINT NOT NULL,
    last_flag_at BIGINT NOT NULL,
    previous_case_id TEXT,
    opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    decision_reason TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX cases_user ON cases (user_id);
CREATE INDEX cases_status ON cases (status);

CREATE TABLE case_flags (
    flag_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    user_id TEXT NOT NULL,
    detector TEXT NOT NULL,
    rule TEXT NOT NULL,
    org_unit TEXT,
    course_id TEXT,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    weighted_severity DOUBLE PRECISION NOT NULL,
    day BIGINT NOT NULL
);
CREATE INDEX case_flags_case ON case_flags (case_id);
CREATE INDEX case_flags_user ON case_flags (user_id);

CREATE TABLE case_claims (
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    credit_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    course_id TEXT NOT NULL,
    completed_at BIGINT NOT NULL,
    credits_value DOUBLE PRECISION NOT NULL,
    flag_ids TEXT NOT NULL,
    decision TEXT,
    decided_at BIGINT,
    PRIMARY KEY (case_id, credit_id)
);
CREATE INDEX case_claims_credit ON case_claims (credit_id);

CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    case_id TEXT,
    before_state TEXT,
    after_state TEXT,
    reason TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_case ON audit (case_id);

-- The chain's head: one row, updated with every record. Every writing transaction updates it
-- first, which serialises writers on both back ends, and its hash detects a deleted last record.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

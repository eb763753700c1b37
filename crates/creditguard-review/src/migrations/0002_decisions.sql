-- Reviewers' decisions, and the outbox of stream records they produce (handed to the results
-- topic after the decision commits, marked published once acknowledged).
CREATE TABLE decisions (
    decision_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    user_id TEXT NOT NULL,
    org_unit TEXT,
    decision TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    reason TEXT NOT NULL,
    decided_at BIGINT NOT NULL,
    day BIGINT NOT NULL,
    record TEXT NOT NULL,
    supersedes TEXT
);
CREATE INDEX decisions_day ON decisions (day);
CREATE INDEX decisions_case ON decisions (case_id);

CREATE TABLE outbox (
    record_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    pos BIGINT NOT NULL,
    record_key TEXT NOT NULL,
    record TEXT NOT NULL,
    day BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (published_at, seq);

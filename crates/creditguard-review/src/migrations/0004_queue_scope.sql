-- The queue and overview inside a reviewer's scope. Org units are compared byte by byte
-- ({bytewise} is BINARY on SQLite and "C" on PostgreSQL, whatever the database's locale), so
-- the subtree of a unit is one range of this index. The status, risk, age and assignee filters,
-- the counts per status and the choice of a page's case ids read the index alone.
CREATE INDEX cases_scope ON cases (org_unit COLLATE {bytewise}, status, risk, opened_at, assignee, case_id);

-- Status alone is not selective (most cases are open): without statistics a planner would pick
-- it over the scope's range.
DROP INDEX cases_status

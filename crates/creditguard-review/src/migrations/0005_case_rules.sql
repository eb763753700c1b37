-- The rules of a case's flags on the case itself (`,rule,rule,`), kept by the sync that attaches
-- flags, so the queue's rule filter reads the scope index instead of probing case_flags per
-- case. {rules_of_case} is the backend's aggregate of the distinct rules of `cases.case_id`.
ALTER TABLE cases ADD COLUMN rules TEXT;

UPDATE cases SET rules = {rules_of_case};

DROP INDEX cases_scope;

CREATE INDEX cases_scope ON cases (org_unit COLLATE {bytewise}, status, risk, opened_at, assignee, case_id, rules)

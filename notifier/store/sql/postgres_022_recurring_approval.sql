-- (PostgreSQL twin of sqlite_022_recurring_approval.sql, the same columns and table)
-- Recurring notices follow the approval rules. A series (its notice and its cron expression, at one revision)
-- needs approvals_required distinct approvers, none of them its author (created_by, or revised_by after a
-- revision), before any slot fires; each notice a slot issues records that approval (its decisions name the
-- series' approvers). Revising a series starts a new revision that waits for approval again. Series registered
-- before this version were never approved: they wait for approval too (approved_at stays NULL).

ALTER TABLE recurring_notices ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE recurring_notices ADD COLUMN approvals_required BIGINT NOT NULL DEFAULT 1;
ALTER TABLE recurring_notices ADD COLUMN approved_at TEXT;
ALTER TABLE recurring_notices ADD COLUMN revised_by TEXT;
ALTER TABLE recurring_notices ADD COLUMN revised_at TEXT;

CREATE TABLE recurring_approvals (
    recurring_id BIGINT NOT NULL REFERENCES recurring_notices (id),
    revision     BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    key_id       BIGINT,
    role         TEXT NOT NULL,
    department   TEXT NOT NULL,
    comment      TEXT,
    decided_at   TEXT NOT NULL,
    PRIMARY KEY (recurring_id, revision, actor)
);

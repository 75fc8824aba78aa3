-- Approval rules (config [approval]): a notice needs a number of distinct approvers, fixed when it is submitted
-- (approvals_required), and is approved once that many have approved it. An extreme alert may be sent at once by
-- a role the config names (overridden_by, overridden_at) and is then approved after the fact: until its
-- approvals are complete (approved_at) it shows as overdue. submitted_at and approved_at also give the
-- department assessment its on-time approvals and the reach report its time from approval to reach.

ALTER TABLE notices ADD COLUMN approvals_required BIGINT;
ALTER TABLE notices ADD COLUMN submitted_at TEXT;
ALTER TABLE notices ADD COLUMN approved_at TEXT;
ALTER TABLE notices ADD COLUMN overridden_by TEXT;
ALTER TABLE notices ADD COLUMN overridden_at TEXT;

-- notices approved before this version: their one approval completed them
UPDATE notices SET approved_at = (SELECT MIN(d.decided_at) FROM notice_decisions d
                                  WHERE d.notice_id = notices.id AND d.decision = 'approved')
WHERE approved_by IS NOT NULL;

-- a decision made after an override (the alert was already sent)
ALTER TABLE notice_decisions ADD COLUMN after_the_fact BIGINT NOT NULL DEFAULT 0;

CREATE INDEX notices_approval_overdue ON notices (department, overridden_at)
    WHERE overridden_at IS NOT NULL AND approved_at IS NULL;
CREATE INDEX notices_created ON notices (created_at);

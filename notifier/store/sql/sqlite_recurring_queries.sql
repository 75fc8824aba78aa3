-- Recurring notices and their approval (migration 022)

-- name: get_recurring_notice
SELECT * FROM recurring_notices WHERE id = :id;

-- name: recurring_approvals
SELECT actor, key_id, role, department, comment, decided_at FROM recurring_approvals
WHERE recurring_id = :recurring_id AND revision = :revision ORDER BY decided_at, actor;

-- name: insert_recurring_approval
INSERT INTO recurring_approvals (recurring_id, revision, actor, key_id, role, department, comment, decided_at)
VALUES (:recurring_id, :revision, :actor, :key_id, :role, :department, :comment, :now);

-- name: complete_recurring_approval
UPDATE recurring_notices SET approved_at = :now
WHERE id = :id AND revision = :revision AND approved_at IS NULL
RETURNING id;

-- name: revise_recurring_notice
UPDATE recurring_notices SET notice = :notice, cron = :cron, revision = revision + 1,
    approvals_required = :required, approved_at = NULL, revised_by = :actor, revised_at = :now
WHERE id = :id AND active = 1
RETURNING revision;

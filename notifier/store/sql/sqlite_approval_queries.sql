-- Approval rules: submission, approvals by distinct approvers, the emergency override (migration 018).

-- name: submit_notice
UPDATE notices SET state = 'pending_approval', approvals_required = :required, submitted_at = :now, updated_at = :now
WHERE id = :id AND state = 'draft'
RETURNING id;

-- name: notice_approvers
-- approvals of the current round: since the last submission (a rejected notice is edited and submitted again),
-- or since the override
SELECT DISTINCT d.actor FROM notice_decisions d JOIN notices n ON n.id = d.notice_id
WHERE d.notice_id = :notice_id AND d.decision = 'approved'
  AND d.decided_at >= COALESCE(n.overridden_at, n.submitted_at, '');

-- name: insert_notice_decision_full
INSERT INTO notice_decisions (notice_id, decision, actor, role, department, comment, decided_at, after_the_fact)
VALUES (:notice_id, :decision, :actor, :role, :department, :comment, :now, :after_the_fact);

-- name: complete_approval
UPDATE notices SET approved_at = :now, approved_by = :approved_by, approvals_required = :required,
    reason = COALESCE(:reason, reason), updated_at = :now
WHERE id = :id AND approved_at IS NULL
RETURNING id;

-- name: override_notice
UPDATE notices SET state = 'approved', overridden_by = :actor, overridden_at = :now,
    submitted_at = CASE WHEN state = 'draft' THEN :now ELSE submitted_at END, approvals_required = :required,
    reason = COALESCE(:reason, reason), updated_at = :now
WHERE id = :id AND state IN ('draft', 'pending_approval') AND severity = 'extreme'
RETURNING id;

-- name: count_notice_approvals
SELECT COUNT(DISTINCT d.actor) FROM notice_decisions d JOIN notices n ON n.id = d.notice_id
WHERE d.notice_id = :notice_id AND d.decision = 'approved'
  AND d.decided_at >= COALESCE(n.overridden_at, n.submitted_at, '');

-- name: notice_state
SELECT state FROM notices WHERE id = :id;

-- name: active_notice_states
-- the states of the notices the engine may move (expire, finish), read before it moves them: the audit log
-- records each move with the state before
SELECT id, state FROM notices WHERE state IN ('approved', 'scheduled', 'sending');


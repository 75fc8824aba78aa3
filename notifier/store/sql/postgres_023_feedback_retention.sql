-- Residents' feedback is kept [feedback] keep_days after it was closed (after it came, for an item never
-- closed); then housekeeping erases its personal fields (text, contact, contact name, resident, answer, source
-- hash) and keeps the row's times, department, category, state and outcome, which the reports count.
-- erased_at says when; erased_after_days the retention it was erased under (shown instead of the text).

ALTER TABLE feedback ADD COLUMN erased_at TEXT;
ALTER TABLE feedback ADD COLUMN erased_after_days BIGINT;
CREATE INDEX feedback_retention ON feedback (COALESCE(closed_at, received_at)) WHERE erased_at IS NULL;

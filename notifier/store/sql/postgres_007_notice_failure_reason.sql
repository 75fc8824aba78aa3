-- Why the service stopped a notice by itself (its template no longer renders with its data at fan-out);
-- NULL for every notice a person decided about. Shown by GET /notices/{id}; the reason a person gives
-- when approving, rejecting or cancelling stays in notices.reason.

ALTER TABLE notices ADD COLUMN failure_reason TEXT;
CREATE INDEX notices_failed ON notices (department) WHERE failure_reason IS NOT NULL;

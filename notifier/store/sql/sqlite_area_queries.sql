-- Named SQL blocks of area deliveries (SQLite): channel kinds `bot` and `bulletin`, one delivery per
-- (notice, area, kind). Queue timing is epoch seconds (:now); row timestamps are RFC 3339 (:now_iso).

-- name: areas_in_target
-- Areas at or under any of :codes (a JSON list; a town covers its villages), or every area when
-- :codes is empty (a county-wide notice).
SELECT code, level FROM areas a
WHERE json_array_length(:codes) = 0 OR EXISTS (
    SELECT 1 FROM json_each(:codes) t WHERE a.code >= t.value AND a.code < t.value || ':')
ORDER BY code;

-- name: insert_area_delivery
-- Written only while the fan-out still holds the approved notice, so a cancel in between wins.
INSERT INTO area_deliveries (notice_id, area_code, channel, alias, state, priority, due_at, deadline,
                             created_at, updated_at)
SELECT :notice_id, :area_code, :channel, :alias, 'queued', :priority, :due_at, :deadline, :now_iso, :now_iso
WHERE EXISTS (SELECT 1 FROM notices WHERE id = :notice_id AND state = 'approved' AND fanout_by = :worker)
ON CONFLICT (notice_id, area_code, channel) DO NOTHING;

-- name: claim_area_deliveries
UPDATE area_deliveries SET state = 'sending', lease_until = :lease_until, leased_by = :worker,
    attempts = attempts + 1, updated_at = :now_iso
WHERE id IN (
    SELECT id FROM area_deliveries
    WHERE state = 'queued' AND alias = :alias AND due_at <= :now AND (deadline IS NULL OR deadline > :now)
    ORDER BY priority DESC, due_at
    LIMIT :limit)
RETURNING id, notice_id, area_code, channel, alias, priority, attempts, deadline;

-- name: record_area_sent
UPDATE area_deliveries SET state = 'sent', provider_message_id = :provider_message_id, lease_until = NULL,
    leased_by = NULL, last_error = NULL, sent_at = :now_iso, updated_at = :now_iso,
    due_at = :poll_at, poll_until = :poll_until
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: requeue_area_delivery
UPDATE area_deliveries SET state = 'queued', due_at = :due_at, alias = :alias, lease_until = NULL,
    leased_by = NULL, last_error = :error, updated_at = :now_iso
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: close_area_delivery
UPDATE area_deliveries SET state = :state, lease_until = NULL, leased_by = NULL, last_error = :error,
    due_at = NULL, updated_at = :now_iso
WHERE id = :id AND state = :from_state AND (:worker IS NULL OR leased_by = :worker);

-- name: recover_area_leases
UPDATE area_deliveries SET state = 'queued', lease_until = NULL, leased_by = NULL, updated_at = :now_iso
WHERE state = 'sending' AND lease_until < :now;

-- name: release_worker_area_leases
-- As release_worker_leases (sqlite_engine_queries.sql), for area deliveries
UPDATE area_deliveries SET state = 'queued', lease_until = NULL, leased_by = NULL, updated_at = :now_iso
WHERE state = 'sending'
  AND leased_by IN (SELECT id FROM workers WHERE beat_at < :dead_before UNION ALL SELECT :worker);

-- name: skip_notice_area_deliveries
UPDATE area_deliveries SET state = 'skipped', last_error = :reason, due_at = NULL, updated_at = :now_iso
WHERE notice_id = :notice_id AND state = 'queued';

-- name: claim_area_polls
-- Sent deliveries whose job state is due to be asked; the next poll time moves first, so two
-- processes never ask about one job at once.
UPDATE area_deliveries SET due_at = :next_poll
WHERE id IN (
    SELECT id FROM area_deliveries
    WHERE state = 'sent' AND due_at IS NOT NULL AND due_at <= :now
    ORDER BY due_at LIMIT :limit)
RETURNING id, notice_id, area_code, channel, alias, provider_message_id, poll_until;

-- name: mark_area_delivered
UPDATE area_deliveries SET state = 'delivered', delivered_at = :now_iso, due_at = NULL, updated_at = :now_iso
WHERE id = :id AND state = 'sent';

-- name: stop_area_poll
UPDATE area_deliveries SET due_at = NULL, last_error = :error, updated_at = :now_iso
WHERE id = :id AND state = 'sent';

-- name: area_delivery_counts
SELECT channel, state, COUNT(*) AS n FROM area_deliveries WHERE notice_id = :notice_id GROUP BY channel, state;

-- name: notice_areas_reached
SELECT COUNT(DISTINCT area_code) AS reached FROM area_deliveries
WHERE notice_id = :notice_id AND state IN ('sent', 'delivered');

-- name: list_area_deliveries
SELECT id, notice_id, area_code, channel, alias, state, attempts, provider_message_id, last_error,
       created_at, updated_at
FROM area_deliveries WHERE notice_id = :notice_id ORDER BY id;

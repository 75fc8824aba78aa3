-- Named SQL blocks of area deliveries (SQLite): rows of `deliveries` whose target is an area (area_code set,
-- channel kinds `bot` and `bulletin`), one per (notice, area, kind). The queue itself (claim, record, requeue,
-- close, leases) is sqlite_engine_queries.sql's, the same for both targets. Queue timing is epoch seconds
-- (:now); row timestamps are RFC 3339 (:now_iso).

-- name: areas_in_target
-- Areas at or under any of :codes (a JSON list; a town covers its villages), or every area when
-- :codes is empty (a county-wide notice).
SELECT code, level FROM areas a
WHERE json_array_length(:codes) = 0 OR EXISTS (
    SELECT 1 FROM json_each(:codes) t WHERE a.code >= t.value AND a.code < t.value || ':')
ORDER BY code;

-- name: insert_area_delivery
-- Written only while the fan-out still holds the approved notice, so a cancel in between wins. The
-- recipient (address) is the area code.
INSERT INTO deliveries (notice_id, area_code, address, channel, alias, state, priority, due_at, deadline,
                        created_at, updated_at)
SELECT :notice_id, :area_code, :area_code, :channel, :alias, 'queued', :priority, :due_at, :deadline,
       :now_iso, :now_iso
WHERE EXISTS (SELECT 1 FROM notices WHERE id = :notice_id AND state = 'approved' AND fanout_by = :worker)
ON CONFLICT (notice_id, area_code, channel) WHERE area_code IS NOT NULL DO NOTHING;

-- name: claim_area_polls
-- Sent area deliveries whose job state is due to be asked (due_at of a sent resident delivery is its
-- confirm-by time instead); the next poll time moves first, so two processes never ask about one job at once.
UPDATE deliveries SET due_at = :next_poll
WHERE id IN (
    SELECT id FROM deliveries
    WHERE state = 'sent' AND due_at IS NOT NULL AND due_at <= :now AND area_code IS NOT NULL
    ORDER BY due_at LIMIT :limit)
RETURNING id, notice_id, area_code, channel, alias, provider_message_id, poll_until;

-- name: stop_area_poll
UPDATE deliveries SET due_at = NULL, last_error = :error, updated_at = :now_iso
WHERE id = :id AND state = 'sent' AND area_code IS NOT NULL;

-- name: notice_areas_reached
SELECT COUNT(DISTINCT area_code) AS reached FROM deliveries
WHERE notice_id = :notice_id AND area_code IS NOT NULL AND state IN ('sent', 'delivered');

-- name: list_area_deliveries
SELECT id, notice_id, area_code, channel, alias, state, attempts, provider_message_id, last_error,
       created_at, updated_at
FROM deliveries WHERE notice_id = :notice_id AND area_code IS NOT NULL ORDER BY id;

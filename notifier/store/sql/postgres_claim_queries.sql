-- The claims of the PostgreSQL dialect: the SQLite blocks of the same name with FOR UPDATE SKIP LOCKED in the
-- subquery that picks the rows. SQLite runs one writer at a time, so its claims never meet; on PostgreSQL
-- several processes claim at once, and without the lock two of them could pick the same rows (the outer UPDATE
-- re-checks only the row it waited for, not the subquery's condition). With it each claim takes rows no other
-- open claim holds, and skips, rather than waits for, those another worker is taking: N workers claim N
-- different batches at the same moment. The rows are picked in a MATERIALIZED CTE, not in `WHERE id IN
-- (subquery)`: the planner may rescan such a subquery (a nested-loop semi join), and each rescan, finding the
-- rows it just updated no longer queued, locks the next ones, so one claim of 100 took 958 rows in the
-- benchmark (19,900 of 20,000 with hash and merge joins off) and sent far beyond its batch and its rate
-- tokens; a CTE runs once. Keep each block in step with its SQLite block: only the lock and the CTE differ (and,
-- in claim_deliveries, how the picked rows and their notice are read, as its comment says).

-- name: claim_notice_for_fanout
-- written for sqlite 61bdc952c601
UPDATE notices SET fanout_by = :worker, fanout_lease_until = :lease_until
WHERE id = (
    SELECT id FROM notices
    WHERE state = 'approved' AND (send_at IS NULL OR send_at <= :now_iso)
      AND (fanout_lease_until IS NULL OR fanout_lease_until < :now OR fanout_by = :worker)
    ORDER BY CASE severity WHEN 'extreme' THEN 9 WHEN 'severe' THEN 8 ELSE 0 END DESC, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: claim_deliveries
-- written for sqlite ca0975b602d4
-- Resident and area deliveries alike (an alias sends to one kind of target). The notice's columns the
-- dispatcher needs (as notices_of_batch reads them) come with each claimed row, read in the claiming
-- statement: no second query per batch (Database.claim_reads_notices; SQLite's store reads them apart). SQLite's
-- OR FAIL (no statement journal) has no PostgreSQL counterpart to need. Two more differences from SQLite, both for the server's work per
-- message: the picked rows are found by their ids in the primary key (a join to the CTE was planned as a hash
-- join over a sequential scan of the whole table, every claim reading every delivery), and the notice is
-- joined once per row rather than read by four subqueries (every claimed row has its notice: a foreign key)
WITH picked AS MATERIALIZED (
    SELECT id FROM deliveries
    WHERE state = 'queued' AND alias = :alias AND due_at <= :now AND (deadline IS NULL OR deadline > :now)
    ORDER BY priority DESC, due_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE deliveries SET state = 'sending', lease_until = :lease_until, leased_by = :worker,
    attempts = deliveries.attempts + 1, updated_at = :now_iso
FROM notices n
WHERE deliveries.id = ANY (ARRAY(SELECT id FROM picked)) AND n.id = deliveries.notice_id
RETURNING deliveries.id, deliveries.notice_id, deliveries.subscriber_id, deliveries.area_code, deliveries.channel,
    deliveries.alias, deliveries.rank, deliveries.priority, deliveries.attempts, deliveries.address,
    deliveries.deadline, deliveries.sent_at IS NOT NULL AS resent,
    n.state AS notice_state, n.channel_mode AS notice_channel_mode, n.channels AS notice_channels,
    n.title AS notice_title,
    (SELECT s.language FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS language;

-- name: claim_area_polls
-- written for sqlite a9d86324396f
-- Sent area deliveries whose job state is due to be asked (due_at of a sent resident delivery is its
-- confirm-by time instead); the next poll time moves first, so two processes never ask about one job at once.
WITH picked AS MATERIALIZED (
    SELECT id FROM deliveries
    WHERE state = 'sent' AND due_at IS NOT NULL AND due_at <= :now AND area_code IS NOT NULL
    ORDER BY due_at LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE deliveries SET due_at = :next_poll
FROM picked WHERE deliveries.id = picked.id
RETURNING deliveries.id, notice_id, area_code, channel, alias, provider_message_id, poll_until;

-- name: claim_direct_messages
-- written for sqlite 018321b6ecab
-- Due messages of an alias, and those whose worker's lease ran out (it died mid-send), oldest first.
WITH picked AS MATERIALIZED (
    SELECT id FROM direct_messages
    WHERE alias = :alias AND ((state = 'queued' AND due_at <= :now) OR (state = 'sending' AND lease_until < :now))
    ORDER BY due_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED)
UPDATE direct_messages SET state = 'sending', lease_until = :lease_until, leased_by = :worker,
    attempts = attempts + 1
FROM picked WHERE direct_messages.id = picked.id
RETURNING direct_messages.id, purpose, request_id, channel, alias, address, subject, text, html, attempts, deadline;

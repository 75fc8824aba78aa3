-- Named SQL blocks of the delivery engine (SQLite). Queue timing (due_at, lease_until, deadline) is
-- epoch seconds (:now); row timestamps are RFC 3339 text (:now_iso).

-- ---------------------------------------------------------------------------------------- fan-out

-- name: claim_notice_for_fanout
UPDATE notices SET fanout_by = :worker, fanout_lease_until = :lease_until
WHERE id = (
    SELECT id FROM notices
    WHERE state = 'approved' AND (send_at IS NULL OR send_at <= :now_iso)
      AND (fanout_lease_until IS NULL OR fanout_lease_until < :now OR fanout_by = :worker)
    ORDER BY CASE severity WHEN 'extreme' THEN 9 WHEN 'severe' THEN 8 ELSE 0 END DESC, id
    LIMIT 1)
RETURNING *;

-- name: notice_due_for_fanout
-- The same condition as claim_notice_for_fanout, read only: the planner asks on every pass, and most
-- passes find nothing, so they need not take the write lock
SELECT 1 FROM notices
WHERE state = 'approved' AND (send_at IS NULL OR send_at <= :now_iso)
  AND (fanout_lease_until IS NULL OR fanout_lease_until < :now OR fanout_by = :worker)
LIMIT 1;

-- name: hold_fanout
UPDATE notices SET fanout_lease_until = :lease_until
WHERE id = :id AND state = 'approved' AND fanout_by = :worker AND fanout_cursor = :after
RETURNING id;

-- name: advance_fanout
UPDATE notices SET fanout_cursor = :upto, targeted = COALESCE(targeted, 0) + :reached,
    skipped = COALESCE(skipped, 0) + :skipped
WHERE id = :id;

-- name: finish_fanout
UPDATE notices SET state = 'scheduled', targeted = COALESCE(targeted, 0), skipped = COALESCE(skipped, 0),
    fanout_lease_until = NULL, updated_at = :now_iso
WHERE id = :id AND state = 'approved' AND fanout_by = :worker
RETURNING id;

-- name: fanout_chunk_end
SELECT MAX(id) AS upto FROM (SELECT id FROM subscribers WHERE id > :after ORDER BY id LIMIT :limit);

-- name: fanout_create_matched
CREATE TEMP TABLE IF NOT EXISTS fanout_matched (
    id INTEGER PRIMARY KEY, area_code TEXT NOT NULL, eligible INTEGER NOT NULL);

-- name: fanout_create_chosen
CREATE TEMP TABLE IF NOT EXISTS fanout_chosen (
    subscriber_id INTEGER NOT NULL, channel TEXT NOT NULL, rank INTEGER NOT NULL, address TEXT NOT NULL,
    area_code TEXT NOT NULL, due_at REAL NOT NULL);

-- name: fanout_clear_matched
DELETE FROM temp.fanout_matched;

-- name: fanout_clear_chosen
DELETE FROM temp.fanout_chosen;

-- name: fanout_match
-- The target rule of notifier.domain.models.Target, for the residents with :after < id <= :upto.
-- eligible: not erased, consent not withdrawn, not opted out of the notice's topic.
INSERT INTO temp.fanout_matched (id, area_code, eligible)
SELECT s.id, s.area_code,
       s.deleted_at IS NULL AND s.consent_withdrawn_at IS NULL AND NOT EXISTS (
           SELECT 1 FROM subscriber_optouts o
           WHERE o.subscriber_id = s.id AND o.kind = 'topic' AND o.value = :topic)
FROM subscribers s
WHERE s.id > :after AND s.id <= :upto
  AND (:roster_id IS NULL AND s.consent_basis = 'consent'
       OR EXISTS (SELECT 1 FROM roster_rows r WHERE r.roster_id = :roster_id AND r.subscriber_id = s.id))
  AND (
    (:has_rule
     AND (json_array_length(:areas) = 0 OR EXISTS (
            SELECT 1 FROM json_each(:areas) a WHERE s.area_code >= a.value AND s.area_code < a.value || ':'))
     AND CASE
           WHEN NOT :has_groups AND NOT :has_topics THEN 1
           WHEN :combine_all THEN
                (NOT :has_groups OR EXISTS (
                    SELECT 1 FROM subscriber_groups sg WHERE sg.subscriber_id = s.id
                      AND sg.group_id IN (SELECT value FROM json_each(:group_ids))))
            AND (NOT :has_topics OR EXISTS (
                    SELECT 1 FROM subscriber_topics st WHERE st.subscriber_id = s.id
                      AND st.topic_id IN (SELECT value FROM json_each(:topic_ids))))
           ELSE
                EXISTS (SELECT 1 FROM subscriber_groups sg WHERE sg.subscriber_id = s.id
                          AND sg.group_id IN (SELECT value FROM json_each(:group_ids)))
             OR EXISTS (SELECT 1 FROM subscriber_topics st WHERE st.subscriber_id = s.id
                          AND st.topic_id IN (SELECT value FROM json_each(:topic_ids)))
         END)
    OR s.id IN (SELECT value FROM json_each(:subscriber_ids))
    OR s.id IN (SELECT d.subscriber_id FROM deliveries d
                WHERE d.notice_id = :referenced_id AND d.state IN ('sent', 'delivered', 'confirmed')));

-- name: fanout_choose
-- Channels per eligible resident: the notice's channels in the resident's preference order, with an
-- address and not opted out; rank 0 is tried first. :all_channels keeps every rank, else rank 0 only.
-- due_at: now, or the end of the resident's quiet hours for non-urgent notices (:local = seconds
-- since local midnight).
INSERT INTO temp.fanout_chosen (subscriber_id, channel, rank, address, area_code, due_at)
SELECT subscriber_id, channel, rank, address, area_code,
       :now + CASE
           WHEN :urgent OR qs IS NULL THEN 0
           WHEN qs <= qe AND :local >= qs AND :local < qe THEN qe - :local
           WHEN qs > qe AND :local >= qs THEN qe + 86400 - :local
           WHEN qs > qe AND :local < qe THEN qe - :local
           ELSE 0 END
FROM (
    SELECT c.*, ROW_NUMBER() OVER (PARTITION BY c.subscriber_id ORDER BY c.pref) - 1 AS rank
    FROM (
        SELECT s.id AS subscriber_id, p.value AS channel, p.key AS pref, s.area_code,
               CASE p.value WHEN 'sms' THEN s.phone WHEN 'email' THEN s.email
                            WHEN 'wechat' THEN s.wechat_openid WHEN 'wecom' THEN s.wecom_userid END AS address,
               CAST(substr(s.quiet_start, 1, 2) AS INTEGER) * 3600
                   + CAST(substr(s.quiet_start, 4, 2) AS INTEGER) * 60 AS qs,
               CAST(substr(s.quiet_end, 1, 2) AS INTEGER) * 3600
                   + CAST(substr(s.quiet_end, 4, 2) AS INTEGER) * 60 AS qe
        FROM temp.fanout_matched m  -- CROSS JOIN fixes the order: the chunk drives, never a scan of everyone
        CROSS JOIN subscribers s ON s.id = m.id
        CROSS JOIN json_each(s.channels) p
        WHERE m.eligible AND p.value IN (SELECT value FROM json_each(:channels))
          AND NOT EXISTS (SELECT 1 FROM subscriber_optouts o
                          WHERE o.subscriber_id = s.id AND o.kind = 'channel' AND o.value = p.value)
    ) c
    WHERE c.address IS NOT NULL
)
WHERE :all_channels OR rank = 0;

-- name: fanout_insert_deliveries
INSERT INTO deliveries (notice_id, subscriber_id, channel, alias, rank, state, priority, due_at, deadline,
                        address, created_at, updated_at)
SELECT :notice_id, subscriber_id, channel, json_extract(:aliases, '$.' || channel), rank, 'queued', :priority,
       due_at, :deadline, address, :now_iso, :now_iso
FROM temp.fanout_chosen WHERE 1
ON CONFLICT (notice_id, subscriber_id, channel) DO NOTHING;

-- name: fanout_chunk_counts
SELECT (SELECT COUNT(*) FROM temp.fanout_matched) AS matched,
       (SELECT COUNT(DISTINCT subscriber_id) FROM temp.fanout_chosen) AS reached;

-- name: fanout_chunk_summary
-- channel '' counts residents the target matched, '*' residents with a delivery, else deliveries.
SELECT substr(area_code, 1, 9) AS town, '' AS channel, COUNT(*) AS n FROM temp.fanout_matched GROUP BY 1
UNION ALL
SELECT substr(area_code, 1, 9), '*', COUNT(DISTINCT subscriber_id) FROM temp.fanout_chosen GROUP BY 1
UNION ALL
SELECT substr(area_code, 1, 9), channel, COUNT(*) FROM temp.fanout_chosen GROUP BY 1, 2;

-- name: store_rendered_message
INSERT INTO rendered_messages (notice_id, channel, content) VALUES (:notice_id, :channel, :content)
ON CONFLICT (notice_id, channel) DO NOTHING;

-- name: rendered_messages
SELECT channel, content FROM rendered_messages WHERE notice_id = :notice_id;

-- name: group_ids
SELECT id FROM resident_groups WHERE code IN (SELECT value FROM json_each(:codes));

-- name: topic_ids
SELECT id FROM topics WHERE code IN (SELECT value FROM json_each(:codes));

-- ------------------------------------------------------------------------------------------ queue

-- name: claim_deliveries
-- Resident and area deliveries alike (an alias sends to one kind of target). The notice's columns the
-- dispatcher needs are read by the store with notices_of_batch in the claim's transaction, once a batch: here
-- RETURNING could read them only by a subquery per column and claimed row (four a delivery, which cost more than
-- the update itself: Database.claim_reads_notices). The resident's language is one subquery a row.
-- OR FAIL: no statement journal. A statement that may stop halfway on a constraint (ABORT, the default) inside a
-- transaction keeps the pages it changes in a statement journal to undo just itself, and a claim's (some 100 KB)
-- went to a temporary file each batch: created, written page by page, deleted (17 writes of SQLite's thread a
-- batch). No constraint can stop this update (it sets no key, no checked column, no NULL into a NOT NULL
-- column); were it stopped by anything else (disk full, I/O error), the store's transaction() rolls it all back
UPDATE OR FAIL deliveries SET state = 'sending', lease_until = :lease_until, leased_by = :worker,
    attempts = attempts + 1, updated_at = :now_iso
WHERE id IN (
    SELECT id FROM deliveries
    WHERE state = 'queued' AND alias = :alias AND due_at <= :now AND (deadline IS NULL OR deadline > :now)
    ORDER BY priority DESC, due_at
    LIMIT :limit)
RETURNING id, notice_id, subscriber_id, area_code, channel, alias, rank, priority, attempts, address, deadline,
    sent_at IS NOT NULL AS resent,
    (SELECT s.language FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS language;

-- name: notices_of_batch
SELECT id, state, channel_mode, channels, title FROM notices WHERE id IN (SELECT value FROM json_each(:ids));

-- name: mark_notices_sending
UPDATE notices SET state = 'sending', updated_at = :now_iso
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'scheduled'
RETURNING id;

-- name: record_sent
-- :sent is a JSON array of [delivery id, provider message id, due_at, poll_until] (due_at: a resident's
-- confirm-by or an area's first print-job poll, epoch or null; poll_until: an area's last poll): a batch in one
-- statement, one trip through the query engine instead of one per message. The unary + keeps the planner
-- off the deliveries_leased_by index: each delivery is looked up by its id, not found by walking every
-- lease of the worker once per element of the list
UPDATE deliveries SET state = 'sent', provider_message_id = json_extract(s.value, '$[1]'), lease_until = NULL,
    leased_by = NULL, last_error = NULL, sent_at = :now_iso, updated_at = :now_iso,
    due_at = json_extract(s.value, '$[2]'), poll_until = json_extract(s.value, '$[3]')
FROM json_each(:sent) s
WHERE deliveries.id = json_extract(s.value, '$[0]') AND deliveries.state = 'sending'
  AND +deliveries.leased_by = :worker;

-- name: requeue_delivery
UPDATE deliveries SET state = 'queued', due_at = :due_at, alias = :alias, lease_until = NULL, leased_by = NULL,
    last_error = :error, updated_at = :now_iso
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: return_unstarted
-- A claimed delivery the adapter never handed to the provider (the batch's time ran out before its turn):
-- queued again as it was, due at once, the claim's try taken back
UPDATE deliveries SET state = 'queued', lease_until = NULL, leased_by = NULL, attempts = attempts - 1,
    last_error = :error, updated_at = :now_iso
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: close_delivery
UPDATE deliveries SET state = :state, lease_until = NULL, leased_by = NULL, last_error = :error,
    due_at = NULL, updated_at = :now_iso
WHERE id = :id AND state = :from_state AND (:worker IS NULL OR leased_by = :worker);

-- name: insert_delivery
INSERT INTO deliveries (notice_id, subscriber_id, channel, alias, rank, state, priority, due_at, deadline,
                        address, created_at, updated_at)
VALUES (:notice_id, :subscriber_id, :channel, :alias, :rank, 'queued', :priority, :due_at, :deadline,
        :address, :now_iso, :now_iso)
ON CONFLICT (notice_id, subscriber_id, channel) DO NOTHING;

-- name: fallback_subject
-- What choosing a resident's next channel needs: addresses, preferences, refusals, channels tried.
SELECT s.id, s.channels, s.phone, s.email, s.wechat_openid, s.wecom_userid, s.quiet_start, s.quiet_end,
       s.deleted_at IS NULL AND s.consent_withdrawn_at IS NULL AS eligible,
       (SELECT json_group_array(o.value) FROM subscriber_optouts o
        WHERE o.subscriber_id = s.id AND o.kind = 'channel') AS refused,
       (SELECT json_group_array(d.channel) FROM deliveries d
        WHERE d.notice_id = :notice_id AND d.subscriber_id = s.id) AS tried
FROM subscribers s WHERE s.id = :subscriber_id;

-- ------------------------------------------------------------------------------------ housekeeping

-- name: recover_leases
UPDATE deliveries SET state = 'queued', lease_until = NULL, leased_by = NULL, updated_at = :now_iso
WHERE state = 'sending' AND lease_until < :now;

-- ----------------------------------------------------------------------------------------- workers

-- name: register_worker
INSERT INTO workers (id, started_at, beat_at, breakers) VALUES (:worker, :now_iso, :now, :breakers)
ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, breakers = excluded.breakers;

-- name: beat_worker
UPDATE workers SET beat_at = :now, breakers = :breakers WHERE id = :worker;

-- name: registered_workers
SELECT id FROM workers ORDER BY id;

-- name: worker_breakers
-- The circuit breakers each live worker reported with its last heartbeat
SELECT id, breakers FROM workers WHERE breakers IS NOT NULL AND beat_at >= :alive_after ORDER BY id;

-- name: dead_worker
-- Read only: most housekeeping passes find no dead worker and need not take the write lock
SELECT id FROM workers WHERE beat_at < :dead_before LIMIT 1;

-- name: release_worker_leases
-- The leases of the workers about to be forgotten, dead ones (no beat since :dead_before) and :worker
-- (stopping cleanly): their deliveries (resident and area ones) go back in the queue
UPDATE deliveries SET state = 'queued', lease_until = NULL, leased_by = NULL, updated_at = :now_iso
WHERE state = 'sending'
  AND leased_by IN (SELECT id FROM workers WHERE beat_at < :dead_before UNION ALL SELECT :worker);

-- name: release_worker_fanouts
-- Their notice fan-outs too: the next planner claims the notice and goes on from its cursor
UPDATE notices SET fanout_lease_until = NULL, fanout_by = NULL
WHERE state = 'approved'
  AND fanout_by IN (SELECT id FROM workers WHERE beat_at < :dead_before UNION ALL SELECT :worker);

-- name: forget_workers
DELETE FROM workers WHERE beat_at < :dead_before OR id = :worker;

-- name: expire_notices
UPDATE notices SET state = 'expired', updated_at = :now_iso
WHERE state IN ('approved', 'scheduled', 'sending') AND expires_at IS NOT NULL AND expires_at <= :now_iso
RETURNING id;

-- name: skip_notice_deliveries
UPDATE deliveries SET state = 'skipped', last_error = :reason, due_at = NULL, updated_at = :now_iso
WHERE notice_id = :notice_id AND state = 'queued';

-- name: finish_notices
-- Done: nothing queued or sending, and no resident's sent message still inside its confirm window (due_at
-- set, see record_sent): until the window passes the notice may yet fall back, and can still be cancelled. A
-- printout whose print job is still asked after (an area's due_at) does not hold the notice open. The queued
-- rows are found by notice (deliveries_queued); the rows being sent among those in flight (deliveries_leases,
-- every batch leased now: the unary + keeps the planner off the notice's key index, which would walk every
-- delivery of the notice)
UPDATE notices SET state = 'done', updated_at = :now_iso
WHERE state IN ('scheduled', 'sending')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = notices.id AND d.state = 'queued')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE +d.notice_id = notices.id AND d.state = 'sending')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = notices.id
                  AND d.state = 'sent' AND d.due_at IS NOT NULL AND d.subscriber_id IS NOT NULL)
RETURNING id;

-- name: notice_to_finish
-- The same condition as finish_notices, read only: most passes find none, and need not take the write lock.
-- Separate tests, not one with an OR: while a notice is being sent the first finds a queued delivery through
-- the partial index deliveries_queued at once; one OR'ed test walked the notice's deliveries already sent on
-- every pass of the planner (1.5 ms each for 20,000 residents, in the bench)
SELECT 1 FROM notices
WHERE state IN ('scheduled', 'sending')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = notices.id AND d.state = 'queued')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE +d.notice_id = notices.id AND d.state = 'sending')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = notices.id
                  AND d.state = 'sent' AND d.due_at IS NOT NULL AND d.subscriber_id IS NOT NULL)
LIMIT 1;

-- name: unconfirmed_deliveries
SELECT id, notice_id, subscriber_id, channel, alias, rank, priority, deadline FROM deliveries
WHERE state = 'sent' AND due_at IS NOT NULL AND due_at <= :now AND subscriber_id IS NOT NULL
ORDER BY due_at LIMIT :limit;

-- name: clear_confirm_deadline
UPDATE deliveries SET due_at = NULL WHERE id = :id AND state = 'sent' AND subscriber_id IS NOT NULL;

-- name: cancel_notice
UPDATE notices SET state = 'cancelled', updated_at = :now_iso
WHERE id = :id AND state IN ('draft', 'pending_approval', 'approved', 'scheduled', 'sending')
RETURNING id;

-- name: next_send_at
SELECT MIN(send_at) AS send_at FROM notices WHERE state = 'approved' AND send_at > :now_iso;

-- --------------------------------------------------------------------------------------- receipts

-- name: lock_message_ids
-- Taken first by a receipt's transaction and by the record of a batch's sends, so that a receipt and the record of
-- the send it reports on run one after the other: :ids is a JSON array of [alias, provider message id]. On SQLite,
-- BEGIN IMMEDIATE already lets one writer in at a time, so there is nothing more to lock (PostgreSQL takes
-- advisory locks).
SELECT 1;

-- name: find_delivery_by_provider_id
SELECT id, notice_id, subscriber_id, channel, alias, rank, priority, deadline, state FROM deliveries
WHERE alias = :alias AND provider_message_id = :provider_message_id;

-- name: insert_receipt
INSERT INTO receipts (delivery_id, alias, provider_message_id, status, detail, received_at)
VALUES (:delivery_id, :alias, :provider_message_id, :status, :detail, :now_iso);

-- name: mark_delivered
UPDATE deliveries SET state = 'delivered', delivered_at = :now_iso, due_at = NULL, updated_at = :now_iso
WHERE id = :id AND state IN ('sent', 'fallback');

-- ------------------------------------------------------------------------------------- scheduling

-- name: insert_recurring_notice
INSERT INTO recurring_notices (department, cron, notice, created_by, created_at, approvals_required)
VALUES (:department, :cron, :notice, :created_by, :now_iso, :required)
RETURNING id;

-- name: active_recurring_notices
-- the series that may fire: active, and approved at their current revision
SELECT id, department, cron, notice, created_by, created_at, revision, approvals_required, approved_at
FROM recurring_notices WHERE active = 1 AND approved_at IS NOT NULL ORDER BY id;

-- name: claim_job_run
INSERT INTO job_runs (job_key, fired_at, fired_by) VALUES (:job_key, :now_iso, :worker)
ON CONFLICT (job_key) DO NOTHING
RETURNING job_key;

-- name: early_receipts_for_deliveries
-- receipts that arrived before the send was recorded (a fast SMSC), now matched to their delivery
SELECT r.id AS receipt_id, r.status, r.detail, r.provider_message_id, d.alias, d.id AS delivery_id
FROM receipts r JOIN deliveries d ON d.alias = r.alias AND d.provider_message_id = r.provider_message_id
WHERE r.delivery_id IS NULL AND d.id IN (SELECT value FROM json_each(:ids))
ORDER BY r.id;

-- name: early_receipts_of_members
-- early receipts of these deliveries of a failover alias kept under one of :members, the aliases it sends through
-- (a receipt comes in on the alias of the gateway that sent the message and is kept once, under that alias)
SELECT r.id AS receipt_id, r.status, r.detail, r.provider_message_id, d.alias, d.id AS delivery_id
FROM deliveries d JOIN receipts r ON r.provider_message_id = d.provider_message_id
WHERE r.delivery_id IS NULL AND r.alias IN (SELECT value FROM json_each(:members))
  AND d.id IN (SELECT value FROM json_each(:ids))
ORDER BY r.id;

-- name: attach_receipt
UPDATE receipts SET delivery_id = :delivery_id WHERE id = :id;

-- name: receipted_message_ids
-- Which of these message ids of an alias have a receipt kept before its send was recorded
SELECT DISTINCT provider_message_id FROM receipts
WHERE delivery_id IS NULL AND alias = :alias AND provider_message_id IN (SELECT value FROM json_each(:ids));

-- name: purge_early_receipts
-- Receipts kept before their send was recorded and still unmatched past the retention: their send will never
-- be recorded (through receipts_unmatched, the unmatched rows only)
DELETE FROM receipts WHERE delivery_id IS NULL AND received_at < :before_iso;

-- PostgreSQL blocks of the engine's queries (sqlite_engine_queries.sql holds the reference; see docs/storage.md).

-- name: fanout_chunk_end
-- written for sqlite 2baefcd2d6a5
SELECT MAX(id) AS upto FROM (SELECT id FROM subscribers WHERE id > :after ORDER BY id LIMIT :limit) AS chunk;

-- name: fanout_create_matched
-- written for sqlite 86b1cd4615a6
-- the staging tables live on the fanning connection (a temporary table is per session); ANALYZE-free: the
-- chunk drives every join through primary keys
CREATE TEMP TABLE IF NOT EXISTS fanout_matched (
    id BIGINT PRIMARY KEY, area_code TEXT NOT NULL, eligible BOOLEAN NOT NULL);

-- name: fanout_create_chosen
-- written for sqlite 7a9226fe3aab
CREATE TEMP TABLE IF NOT EXISTS fanout_chosen (
    subscriber_id BIGINT NOT NULL, channel TEXT NOT NULL, rank INTEGER NOT NULL, address TEXT NOT NULL,
    area_code TEXT NOT NULL, due_at DOUBLE PRECISION NOT NULL);

-- name: fanout_clear_matched
-- written for sqlite dbeed751955b
TRUNCATE pg_temp.fanout_matched;

-- name: fanout_clear_chosen
-- written for sqlite e44da2361518
TRUNCATE pg_temp.fanout_chosen;

-- name: fanout_match
-- written for sqlite 0911ab6c880b
-- The target rule of notifier.domain.models.Target, for the residents with :after < id <= :upto.
-- eligible: not erased, consent not withdrawn, not opted out of the notice's topic.
INSERT INTO pg_temp.fanout_matched (id, area_code, eligible)
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
           WHEN NOT :has_groups AND NOT :has_topics THEN TRUE
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
                WHERE d.notice_id = :referenced_id AND d.state IN ('sent', 'delivered', 'confirmed')));;

-- name: fanout_choose
-- written for sqlite ad8d6d1d0eec
-- Channels per eligible resident: the notice's channels in the resident's preference order, with an
-- address and not opted out; rank 0 is tried first. :all_channels keeps every rank, else rank 0 only.
-- due_at: now, or the end of the resident's quiet hours for non-urgent notices (:local = seconds
-- since local midnight).
INSERT INTO pg_temp.fanout_chosen (subscriber_id, channel, rank, address, area_code, due_at)
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
        FROM pg_temp.fanout_matched m
        JOIN subscribers s ON s.id = m.id
        CROSS JOIN LATERAL json_array_elements_text(s.channels::json) WITH ORDINALITY AS p (value, key)
        -- the chunk's id range on subscribers too: the staging table has no statistics, and without the range
        -- the planner may hash-join it against a scan of every resident
        WHERE s.id > :after AND s.id <= :upto AND m.eligible AND p.value IN (SELECT value FROM json_each(:channels))
          AND NOT EXISTS (SELECT 1 FROM subscriber_optouts o
                          WHERE o.subscriber_id = s.id AND o.kind = 'channel' AND o.value = p.value)
    ) c
    WHERE c.address IS NOT NULL
) ranked
WHERE :all_channels OR rank = 0;;

-- name: fanout_insert_deliveries
-- written for sqlite d98c47da35fd
-- One statement per chunk, no staging table (PostgreSQL writes inside WITH; DeliveryRepository.write_chunk):
-- `matched` is fanout_match's SELECT and `chosen` fanout_choose's, word for word, reading `matched` instead of
-- pg_temp.fanout_matched (tests/test_dialects.py holds them in step); returns the chunk's counts as
-- fanout_chunk_counts would. Staging cost six more round trips per chunk (create, truncate, insert twice,
-- count): interleaved with it on a million residents, a chunk took 0.82 to 1.05 x the staged chunk's time
-- (median per run, load 6 to 9) for the same CPU time of the server.
WITH matched (id, area_code, eligible) AS MATERIALIZED (
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
               WHEN NOT :has_groups AND NOT :has_topics THEN TRUE
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
                    WHERE d.notice_id = :referenced_id AND d.state IN ('sent', 'delivered', 'confirmed')))
),
chosen (subscriber_id, channel, rank, address, area_code, due_at) AS MATERIALIZED (
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
            FROM matched m
            JOIN subscribers s ON s.id = m.id
            CROSS JOIN LATERAL json_array_elements_text(s.channels::json) WITH ORDINALITY AS p (value, key)
            -- the chunk's id range on subscribers too, as in fanout_choose
            WHERE s.id > :after AND s.id <= :upto AND m.eligible AND p.value IN (SELECT value FROM json_each(:channels))
              AND NOT EXISTS (SELECT 1 FROM subscriber_optouts o
                              WHERE o.subscriber_id = s.id AND o.kind = 'channel' AND o.value = p.value)
        ) c
        WHERE c.address IS NOT NULL
    ) ranked
    WHERE :all_channels OR rank = 0
),
inserted AS (
    INSERT INTO deliveries (notice_id, subscriber_id, channel, alias, rank, state, priority, due_at, deadline,
                            address, created_at, updated_at)
    SELECT :notice_id, subscriber_id, channel, CAST(:aliases AS json) ->> channel, rank, 'queued', :priority,
           due_at, :deadline, address, :now_iso, :now_iso
    FROM chosen
    ON CONFLICT (notice_id, subscriber_id, channel) DO NOTHING
)
SELECT (SELECT COUNT(*) FROM matched) AS matched, (SELECT COUNT(DISTINCT subscriber_id) FROM chosen) AS reached;

-- name: fanout_chunk_counts
-- written for sqlite b82879e3ffd3
SELECT (SELECT COUNT(*) FROM pg_temp.fanout_matched) AS matched,
       (SELECT COUNT(DISTINCT subscriber_id) FROM pg_temp.fanout_chosen) AS reached;

-- name: fanout_chunk_summary
-- written for sqlite d5c4f83702ec
SELECT substr(area_code, 1, 9) AS town, '' AS channel, COUNT(*) AS n FROM pg_temp.fanout_matched GROUP BY 1
UNION ALL
SELECT substr(area_code, 1, 9), '*', COUNT(DISTINCT subscriber_id) FROM pg_temp.fanout_chosen GROUP BY 1
UNION ALL
SELECT substr(area_code, 1, 9), channel, COUNT(*) FROM pg_temp.fanout_chosen GROUP BY 1, 2;

-- name: record_sent
-- written for sqlite 9beb4ce71c94
-- :sent is a JSON array of [delivery id, provider message id, due_at, poll_until], as on SQLite. Read as jsonb:
-- parsed once into its binary form, where each ->> is a look-up; on json text every ->> parsed its element
-- again, four times a message (with lock_message_ids' two, 9 % of the server's instructions for a batch's
-- record and claim)
UPDATE deliveries SET state = 'sent', provider_message_id = s.value ->> 1, lease_until = NULL,
    leased_by = NULL, last_error = NULL, sent_at = :now_iso, updated_at = :now_iso,
    due_at = (s.value ->> 2)::double precision, poll_until = (s.value ->> 3)::double precision
FROM jsonb_array_elements(CAST(:sent AS jsonb)) AS s (value)
WHERE deliveries.id = (s.value ->> 0)::bigint AND deliveries.state = 'sending'
  AND deliveries.leased_by = :worker;

-- name: lock_message_ids
-- written for sqlite 82ef55974ec5
-- Transactions run side by side here: a receipt's look-up for its sent delivery and the record of that send's
-- look-up for early receipts could each run before the other committed, and the receipt was kept but never
-- applied. So both sides first take a transaction advisory lock on each [alias, provider message id] of :ids,
-- and each look-up, a statement of its own after the lock, sees what the other side committed. The two-key form
-- keeps these locks apart from the single-key ones (the audit chain's, the leader's, migrate's): "rcpt", then a
-- hash of the pair (two pairs with one hash wait for each other, no more). In key order, so that two
-- transactions locking overlapping sets wait for each other instead of deadlocking; released at commit. :ids
-- is read as jsonb, as record_sent's :sent (that block says why).
SELECT pg_advisory_xact_lock(1919119476, k.key)
FROM (SELECT DISTINCT hashtext((p.value ->> 0) || ' ' || (p.value ->> 1)) AS key
      FROM jsonb_array_elements(CAST(:ids AS jsonb)) AS p (value)) AS k
ORDER BY k.key;

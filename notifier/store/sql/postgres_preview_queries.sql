-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_preview_queries.sql (docs/storage.md,
-- "Two dialects"): the staging tables are in pg_temp, and a join takes JOIN ... ON.

-- name: preview_chunk_skips
-- written for sqlite 8d706462f8a0
-- Why each matched resident the fan-out gives no channel is skipped, per town: the first reason that holds.
-- erased: personal data deleted; consent_withdrawn; topic_opt_out: opted out of the notice's topic;
-- channel_opt_out: has an address for one of :channels among their preferences but opted out of each such one;
-- no_address: none of :channels (the kinds the service sends through) is among their preferences with an address.
SELECT substr(m.area_code, 1, 9) AS town,
       CASE
           WHEN s.deleted_at IS NOT NULL THEN 'erased'
           WHEN s.consent_withdrawn_at IS NOT NULL THEN 'consent_withdrawn'
           WHEN NOT m.eligible THEN 'topic_opt_out'
           WHEN EXISTS (
               SELECT 1 FROM json_each(s.channels) p
               WHERE p.value IN (SELECT value FROM json_each(:channels))
                 AND CASE p.value WHEN 'sms' THEN s.phone WHEN 'email' THEN s.email
                                  WHEN 'wechat' THEN s.wechat_openid WHEN 'wecom' THEN s.wecom_userid END IS NOT NULL)
               THEN 'channel_opt_out'
           ELSE 'no_address'
       END AS reason,
       COUNT(*) AS n
FROM pg_temp.fanout_matched m
JOIN subscribers s ON s.id = m.id
WHERE NOT EXISTS (SELECT 1 FROM pg_temp.fanout_chosen c WHERE c.subscriber_id = m.id)
GROUP BY 1, 2;

-- name: preview_chunk_held
-- written for sqlite f4f8fcaaa93b
-- Residents reached whose first message would wait for the end of their quiet hours (fanout_choose sets
-- due_at past :now only for a non-urgent notice inside a resident's quiet hours), per town.
SELECT substr(area_code, 1, 9) AS town, COUNT(DISTINCT subscriber_id) AS n
FROM pg_temp.fanout_chosen
WHERE rank = 0 AND due_at > :now
GROUP BY 1;

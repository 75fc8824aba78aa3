-- Named SQL blocks of confirmations, reminders, follow-up lists and residents' feedback (SQLite).

-- ---------------------------------------------------------------------------------- confirmations

-- name: set_notice_confirmation
UPDATE notices SET confirmation = :confirmation, answers_feedback = :answers_feedback WHERE id = :id;

-- name: set_notice_confirmation_only
UPDATE notices SET confirmation = :confirmation WHERE id = :id;

-- name: awaiting_confirmation_by_sms
-- The SMS delivery of the latest notice that asks this resident to confirm and that they have not confirmed
SELECT d.id, d.notice_id, d.subscriber_id, d.channel FROM deliveries d
JOIN notices n ON n.id = d.notice_id
WHERE d.subscriber_id = :subscriber_id AND d.channel = 'sms' AND n.confirmation IS NOT NULL
  AND d.state IN ('sent', 'delivered', 'fallback')
  AND n.state IN ('scheduled', 'sending', 'done')
  AND NOT EXISTS (SELECT 1 FROM deliveries c WHERE c.notice_id = d.notice_id AND c.subscriber_id = d.subscriber_id
                    AND c.state = 'confirmed')
ORDER BY d.sent_at DESC, d.id DESC LIMIT 1;

-- name: delivery_for_confirmation
SELECT d.id, d.notice_id, d.subscriber_id, d.channel, d.state, n.confirmation, n.state AS notice_state,
       (SELECT c.id FROM deliveries c WHERE c.notice_id = d.notice_id AND c.subscriber_id = d.subscriber_id
          AND c.state = 'confirmed' LIMIT 1) AS confirmed_delivery
FROM deliveries d JOIN notices n ON n.id = d.notice_id WHERE d.id = :id AND d.subscriber_id IS NOT NULL;

-- name: confirm_delivery
UPDATE deliveries SET state = 'confirmed', confirmed_at = :now_iso, due_at = NULL, updated_at = :now_iso
WHERE id = :id AND state IN ('sent', 'delivered', 'fallback');

-- name: notices_to_remind
SELECT id, channels, channel_mode, state, confirmation FROM notices
WHERE confirmation IS NOT NULL AND json_extract(confirmation, '$.remind_after_minutes') IS NOT NULL
  AND state IN ('scheduled', 'sending', 'done') AND created_at >= :since
ORDER BY id;

-- name: reminder_candidates
-- Residents of the notice with a message sent at or before :cutoff, none confirmed, none still on its way,
-- and no reminder yet: (resident, the highest rank and its priority and deadline, for the next delivery)
SELECT d.notice_id, d.subscriber_id, MAX(d.rank) AS rank, MAX(d.priority) AS priority, MAX(d.deadline) AS deadline
FROM deliveries d
WHERE d.notice_id = :notice_id AND d.subscriber_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM confirmation_reminders r
                  WHERE r.notice_id = d.notice_id AND r.subscriber_id = d.subscriber_id)
GROUP BY d.subscriber_id
HAVING SUM(d.state IN ('sent', 'delivered') AND d.sent_at <= :cutoff) > 0
   AND SUM(d.state IN ('confirmed', 'queued', 'sending')) = 0
ORDER BY d.subscriber_id
LIMIT :limit;

-- name: insert_confirmation_reminder
INSERT INTO confirmation_reminders (notice_id, subscriber_id, channel, reminded_at)
VALUES (:notice_id, :subscriber_id, :channel, :now_iso)
ON CONFLICT (notice_id, subscriber_id) DO NOTHING;

-- name: latest_sent_delivery
-- The resident's last message of the notice that went out (a reminder on the same channel re-sends it)
SELECT id, channel, rank FROM deliveries
WHERE notice_id = :notice_id AND subscriber_id = :subscriber_id AND state IN ('sent', 'delivered')
ORDER BY rank DESC, id DESC LIMIT 1;

-- name: resend_delivery
-- Queue a sent message again (a reminder on the same channel) on the alias and address given; it keeps its
-- sent_at, which no other queued delivery has (a queued one was never sent), so the claim can tell a resend
UPDATE deliveries SET state = 'queued', alias = :alias, address = :address, due_at = :due_at, attempts = 0,
    lease_until = NULL, leased_by = NULL, last_error = NULL, updated_at = :now_iso
WHERE id = :id AND state IN ('sent', 'delivered');

-- name: follow_up_list
-- Residents of the notice with no confirmed delivery, by id; :after is a resident id. Scoped (:scoped), only the
-- residents a department reads: subscribed to one of :scope_topics or in one of :scope_groups
SELECT s.id AS subscriber_id, s.name, s.phone, s.area_code,
       substr(s.area_code, 1, 12) AS village, v.name AS village_name,
       substr(s.area_code, 1, 9) AS town, t.name AS town_name,
       r.reminded_at, r.channel AS reminder_channel,
       (SELECT json_group_array(x.channel || ':' || x.state) FROM deliveries x
        WHERE x.notice_id = :notice_id AND x.subscriber_id = s.id) AS states
FROM (SELECT subscriber_id FROM deliveries WHERE notice_id = :notice_id AND subscriber_id IS NOT NULL
      GROUP BY subscriber_id HAVING SUM(state = 'confirmed') = 0) u
JOIN subscribers s ON s.id = u.subscriber_id
LEFT JOIN areas v ON v.code = substr(s.area_code, 1, 12)
LEFT JOIN areas t ON t.code = substr(s.area_code, 1, 9)
LEFT JOIN confirmation_reminders r ON r.notice_id = :notice_id AND r.subscriber_id = s.id
WHERE s.deleted_at IS NULL AND s.id > :after
  AND (:area IS NULL OR (s.area_code >= :area AND s.area_code < :area || ':'))
  AND (NOT :scoped
       OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                  WHERE st.subscriber_id = s.id AND t.code IN (SELECT value FROM json_each(:scope_topics)))
       OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                  WHERE sg.subscriber_id = s.id AND g.code IN (SELECT value FROM json_each(:scope_groups))))
ORDER BY s.id LIMIT :limit;

-- name: confirmation_counts
SELECT COUNT(DISTINCT subscriber_id) AS residents,
       COUNT(DISTINCT CASE WHEN state = 'confirmed' THEN subscriber_id END) AS confirmed,
       (SELECT COUNT(*) FROM confirmation_reminders r WHERE r.notice_id = :notice_id AND r.channel IS NOT NULL)
           AS reminded
FROM deliveries WHERE notice_id = :notice_id;

-- --------------------------------------------------------------------------------------- feedback

-- name: latest_notice_for_subscriber
-- The notice a resident's reply on a channel answers: the latest one sent to them on that channel
SELECT d.notice_id, n.department FROM deliveries d JOIN notices n ON n.id = d.notice_id
WHERE d.subscriber_id = :subscriber_id AND d.channel = :channel
  AND d.state IN ('sent', 'delivered', 'confirmed', 'fallback')
ORDER BY d.sent_at DESC, d.id DESC LIMIT 1;

-- name: find_subscriber_by_openid
SELECT id FROM subscribers WHERE wechat_openid = :openid AND deleted_at IS NULL LIMIT 1;

-- name: insert_feedback
INSERT INTO feedback (notice_id, department, subscriber_id, channel, alias, contact, contact_name, category, text,
                      state, source_hash, received_at, due_at)
VALUES (:notice_id, :department, :subscriber_id, :channel, :alias, :contact, :contact_name, :category, :text,
        'open', :source_hash, :received_at, :due_at)
RETURNING id;

-- name: get_feedback
SELECT * FROM feedback WHERE id = :id;

-- name: list_feedback
SELECT * FROM feedback
WHERE id > :after
  AND ((:department IS NULL) OR department = :department OR (:unlinked AND department IS NULL))
  AND (:notice_id IS NULL OR notice_id = :notice_id)
  AND (:state IS NULL OR state = :state)
  AND (:overdue IS NULL OR (:overdue = (state = 'open' AND due_at < :now_iso)))
ORDER BY id LIMIT :limit;

-- name: lock_feedback_source
-- Taken first by the transaction that counts a client address's public forms and takes one. On SQLite, BEGIN
-- IMMEDIATE already lets one writer in at a time, so there is nothing more to lock (PostgreSQL takes an advisory lock).
SELECT 1;

-- name: recent_feedback_from_source
SELECT COUNT(*) AS n FROM feedback WHERE source_hash = :source_hash AND received_at >= :since;

-- name: assign_feedback
UPDATE feedback SET assigned_to = :assigned_to WHERE id = :id AND state != 'closed' RETURNING id;

-- name: answer_feedback
UPDATE feedback SET state = 'answered', answer = :answer, answered_at = COALESCE(answered_at, :now_iso),
    answered_by = :answered_by, reply_notice = :reply_notice
WHERE id = :id AND state != 'closed' RETURNING id;

-- name: close_feedback
UPDATE feedback SET state = 'closed', outcome = :outcome, closed_at = :now_iso, closed_by = :closed_by
WHERE id = :id AND state != 'closed' RETURNING id;

-- name: feedback_report
-- Per department: items received in [from, to), answered, answered by their due time, and each answer's minutes
SELECT COALESCE(department, '') AS department, received_at, due_at, answered_at FROM feedback
WHERE received_at >= :from_iso AND received_at < :to_iso
  AND (:department IS NULL OR department = :department)
ORDER BY department, id;

-- name: erase_reply_notices
-- The answers of erased feedback items that reply notices carried to their senders: the body (the answer) of
-- each finished reply notice blanked, once; the notices that were blanked, with the item each answered
UPDATE notices SET body = '', updated_at = :now_iso
WHERE answers_feedback IN (SELECT id FROM feedback WHERE erased_at IS NOT NULL)
  AND state IN ('done', 'cancelled', 'expired', 'rejected') AND body <> ''
RETURNING id, answers_feedback;

-- name: erase_reply_renderings
-- The messages rendered from the blanked reply notices (each channel's text held the answer)
DELETE FROM rendered_messages WHERE notice_id IN (
    SELECT id FROM notices WHERE answers_feedback IS NOT NULL AND body = '');

-- name: erase_expired_feedback
-- Items closed (or, never closed, received) before :cutoff_iso and not yet erased: personal fields blanked,
-- the rest kept for the reports; at most :limit a run, oldest first
UPDATE feedback SET text = '', contact = NULL, contact_name = NULL, subscriber_id = NULL, answer = NULL,
    source_hash = NULL, erased_at = :now_iso, erased_after_days = :keep_days
WHERE id IN (SELECT id FROM feedback WHERE erased_at IS NULL AND COALESCE(closed_at, received_at) < :cutoff_iso
             ORDER BY id LIMIT :limit)
RETURNING id, department;

-- Named SQL blocks of the console's residents page (SQLite): the API's list with name and phone added, and the
-- deliveries a resident received.

-- name: search_subscribers
-- list_subscribers (the same scope rule) narrowed by a part of the name and the end of the phone number.
SELECT s.* FROM subscribers s
WHERE s.deleted_at IS NULL AND s.id > :after
  AND (:area_lo IS NULL OR (s.area_code >= :area_lo AND s.area_code < :area_hi))
  AND (:group IS NULL OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                                 WHERE sg.subscriber_id = s.id AND g.code = :group))
  AND (:topic IS NULL OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                                 WHERE st.subscriber_id = s.id AND t.code = :topic))
  AND (:name IS NULL OR instr(s.name, :name) > 0)
  AND (:phone IS NULL OR substr(s.phone, -length(:phone)) = :phone)
  AND (NOT :scoped
       OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                  WHERE st.subscriber_id = s.id AND t.code IN (SELECT value FROM json_each(:scope_topics)))
       OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                  WHERE sg.subscriber_id = s.id AND g.code IN (SELECT value FROM json_each(:scope_groups))))
ORDER BY s.id LIMIT :limit;

-- name: subscriber_deliveries
-- The messages a resident was sent, newest first; only notices of :department (all with NULL).
SELECT d.id, d.notice_id, n.title, n.department, d.channel, d.state, d.attempts, d.created_at, d.updated_at
FROM deliveries d JOIN notices n ON n.id = d.notice_id
WHERE d.subscriber_id = :subscriber_id AND (:department IS NULL OR n.department = :department)
ORDER BY d.id DESC LIMIT :limit;

-- name: subscriber_history
-- What the audit log holds about one resident, oldest first (details are kept masked).
SELECT at, actor, action FROM audit_log
WHERE object_type = 'subscriber' AND object_id = :subscriber_id
ORDER BY id LIMIT :limit;

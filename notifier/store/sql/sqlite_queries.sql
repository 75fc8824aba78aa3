-- Named SQL blocks for the SQLite store. Each block starts with "-- name: <name>".
-- Parameters are :named. Keep every statement the store runs here.

-- name: insert_area
INSERT INTO areas (code, name, level, parent) VALUES (:code, :name, :level, :parent)
ON CONFLICT (code) DO UPDATE SET name = excluded.name;

-- name: list_areas
SELECT code, name, level, parent FROM areas ORDER BY code;

-- name: get_area
SELECT code, name, level, parent FROM areas WHERE code = :code;

-- name: upsert_department
INSERT INTO departments (code, name) VALUES (:code, :name)
ON CONFLICT (code) DO UPDATE SET name = excluded.name;

-- name: get_department
SELECT code, name FROM departments WHERE code = :code;

-- name: list_departments
SELECT code, name FROM departments ORDER BY code;

-- name: department_topics
SELECT t.code FROM department_topics dt JOIN topics t ON t.id = dt.topic_id
WHERE dt.department = :department ORDER BY t.code;

-- name: grant_department_topic
INSERT INTO department_topics (department, topic_id)
SELECT :department, id FROM topics WHERE code = :topic
ON CONFLICT DO NOTHING;

-- name: department_groups
SELECT g.code FROM department_groups dg JOIN resident_groups g ON g.id = dg.group_id
WHERE dg.department = :department ORDER BY g.code;

-- name: grant_department_group
INSERT INTO department_groups (department, group_id)
SELECT :department, id FROM resident_groups WHERE code = :group
ON CONFLICT DO NOTHING;

-- name: insert_topic
INSERT INTO topics (code, name, description) VALUES (:code, :name, :description);

-- name: upsert_topic
INSERT INTO topics (code, name, description) VALUES (:code, :name, :description)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, description = excluded.description;

-- name: list_topics
SELECT id, code, name, description FROM topics WHERE id > :after ORDER BY id LIMIT :limit;

-- name: get_topic
SELECT id, code, name, description FROM topics WHERE code = :code;

-- name: insert_group
INSERT INTO resident_groups (code, name, description) VALUES (:code, :name, :description);

-- name: upsert_group
INSERT INTO resident_groups (code, name, description) VALUES (:code, :name, :description)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, description = excluded.description;

-- name: list_groups
SELECT id, code, name, description FROM resident_groups WHERE id > :after ORDER BY id LIMIT :limit;

-- name: get_group
SELECT id, code, name, description FROM resident_groups WHERE code = :code;

-- name: insert_subscriber
INSERT INTO subscribers (external_id, name, phone, email, wechat_openid, wecom_userid, area_code, channels,
                         language, quiet_start, quiet_end, consent_source, consent_at, created_at, updated_at)
VALUES (:external_id, :name, :phone, :email, :wechat_openid, :wecom_userid, :area_code, :channels,
        :language, :quiet_start, :quiet_end, :consent_source, :consent_at, :now, :now)
RETURNING id;

-- name: update_subscriber
UPDATE subscribers SET name = :name, phone = :phone, email = :email, wechat_openid = :wechat_openid,
    wecom_userid = :wecom_userid, area_code = :area_code, channels = :channels, language = :language,
    quiet_start = :quiet_start, quiet_end = :quiet_end, consent_withdrawn_at = :consent_withdrawn_at,
    updated_at = :now
WHERE id = :id AND deleted_at IS NULL;

-- name: resident_settings_chosen_at
SELECT settings_chosen_at FROM subscribers WHERE id = :id AND deleted_at IS NULL;

-- name: mark_resident_settings_chosen
UPDATE subscribers SET settings_chosen_at = :now WHERE id = :id AND deleted_at IS NULL;

-- name: erase_subscriber
UPDATE subscribers SET name = '', phone = NULL, email = NULL, wechat_openid = NULL, wecom_userid = NULL,
    external_id = NULL, settings_chosen_at = NULL, deleted_at = :now, updated_at = :now,
    consent_withdrawn_at = COALESCE(consent_withdrawn_at, :now)
WHERE id = :id AND deleted_at IS NULL;

-- name: get_subscriber
SELECT * FROM subscribers WHERE id = :id AND deleted_at IS NULL;

-- name: get_subscribers
SELECT * FROM subscribers WHERE id IN (SELECT value FROM json_each(:ids)) AND deleted_at IS NULL ORDER BY id;

-- name: find_subscriber_by_phone
SELECT id FROM subscribers WHERE phone = :phone AND deleted_at IS NULL;

-- name: find_subscriber_by_external_id
SELECT id FROM subscribers WHERE external_id = :external_id AND deleted_at IS NULL;

-- name: list_subscribers
SELECT s.* FROM subscribers s
WHERE s.deleted_at IS NULL AND s.id > :after
  AND (:area_lo IS NULL OR (s.area_code >= :area_lo AND s.area_code < :area_hi))
  AND (:group IS NULL OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                                 WHERE sg.subscriber_id = s.id AND g.code = :group))
  AND (:topic IS NULL OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                                 WHERE st.subscriber_id = s.id AND t.code = :topic))
  AND (NOT :scoped
       OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                  WHERE st.subscriber_id = s.id AND t.code IN (SELECT value FROM json_each(:scope_topics)))
       OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                  WHERE sg.subscriber_id = s.id AND g.code IN (SELECT value FROM json_each(:scope_groups))))
ORDER BY s.id LIMIT :limit;

-- name: subscriber_group_codes
SELECT sg.subscriber_id, g.code FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
WHERE sg.subscriber_id IN (SELECT value FROM json_each(:ids)) ORDER BY g.code;

-- name: subscriber_topic_codes
SELECT st.subscriber_id, t.code FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
WHERE st.subscriber_id IN (SELECT value FROM json_each(:ids)) ORDER BY t.code;

-- name: subscriber_optout_values
SELECT subscriber_id, kind, value FROM subscriber_optouts
WHERE subscriber_id IN (SELECT value FROM json_each(:ids)) ORDER BY kind, value;

-- name: subscriber_optout_sources
SELECT kind, value, source, created_at FROM subscriber_optouts WHERE subscriber_id = :id;

-- name: clear_subscriber_groups
DELETE FROM subscriber_groups WHERE subscriber_id = :id;

-- name: add_subscriber_group
INSERT INTO subscriber_groups (subscriber_id, group_id)
SELECT :id, id FROM resident_groups WHERE code = :code ON CONFLICT DO NOTHING;

-- name: clear_subscriber_topics
DELETE FROM subscriber_topics WHERE subscriber_id = :id;

-- name: add_subscriber_topic
INSERT INTO subscriber_topics (subscriber_id, topic_id)
SELECT :id, id FROM topics WHERE code = :code ON CONFLICT DO NOTHING;

-- name: remove_subscriber_optout
DELETE FROM subscriber_optouts WHERE subscriber_id = :id AND kind = :kind AND value = :value;

-- name: add_subscriber_optout
INSERT INTO subscriber_optouts (subscriber_id, kind, value, created_at, source)
VALUES (:id, :kind, :value, :now, :source) ON CONFLICT DO NOTHING;

-- name: set_subscriber_optout_source
UPDATE subscriber_optouts SET source = :source, created_at = :now
WHERE subscriber_id = :id AND kind = :kind AND value = :value;

-- name: insert_api_key
INSERT INTO api_keys (prefix, secret_hash, name, department, role, created_at)
VALUES (:prefix, :secret_hash, :name, :department, :role, :now) RETURNING id;

-- name: get_api_key_by_prefix
SELECT id, prefix, secret_hash, name, department, role, created_at, last_used_at, revoked_at
FROM api_keys WHERE prefix = :prefix;

-- name: list_api_keys
SELECT id, prefix, name, department, role, created_at, last_used_at, revoked_at FROM api_keys
WHERE id > :after AND (:department IS NULL OR department = :department) ORDER BY id LIMIT :limit;

-- name: touch_api_key
UPDATE api_keys SET last_used_at = :now WHERE id = :id;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL;

-- name: insert_notice
INSERT INTO notices (department, topic, title, body, template, template_version, data, severity, target, channels,
                     channel_mode, send_at, expires_at, references_id, state, created_by, idempotency_key,
                     request_hash, created_at, updated_at)
VALUES (:department, :topic, :title, :body, :template, :template_version, :data, :severity, :target, :channels,
        :channel_mode, :send_at, :expires_at, :references_id, :state, :created_by, :idempotency_key,
        :request_hash, :now, :now)
RETURNING id;

-- name: get_notice
SELECT * FROM notices WHERE id = :id;

-- name: find_notice_by_idempotency_key
SELECT * FROM notices WHERE department = :department AND idempotency_key = :idempotency_key;

-- name: list_notices
SELECT * FROM notices
WHERE id < :before AND (:department IS NULL OR department = :department) AND (:state IS NULL OR state = :state)
  AND (:overdue IS NULL OR (overridden_at IS NOT NULL AND approved_at IS NULL) = :overdue)
ORDER BY id DESC LIMIT :limit;

-- name: transition_notice
UPDATE notices SET state = :to_state, approved_by = COALESCE(:approved_by, approved_by),
    reason = COALESCE(:reason, reason), updated_at = :now,
    submitted_at = CASE WHEN :to_state = 'pending_approval' THEN :now ELSE submitted_at END
WHERE id = :id AND state IN (SELECT value FROM json_each(:from_states))
RETURNING id;

-- name: delivery_counts
SELECT channel, state, COUNT(*) AS n FROM deliveries WHERE notice_id = :notice_id GROUP BY channel, state;

-- name: notice_reached
SELECT COUNT(DISTINCT subscriber_id) AS reached FROM deliveries
WHERE notice_id = :notice_id AND state IN ('sent', 'delivered', 'confirmed');

-- name: list_deliveries
SELECT id, notice_id, subscriber_id, channel, alias, state, attempts, provider_message_id, last_error,
       created_at, updated_at, address
FROM deliveries WHERE notice_id = :notice_id AND id > :after AND subscriber_id IS NOT NULL ORDER BY id LIMIT :limit;

-- name: insert_audit
INSERT INTO audit_log (id, at, actor, action, object_type, object_id, detail, prev_hash, hash)
VALUES (:id, :at, :actor, :action, :object_type, :object_id, :detail, :prev_hash, :hash);

-- name: lock_audit_chain
-- Taken before last_audit, in the same transaction: on SQLite, BEGIN IMMEDIATE already lets one writer in at
-- a time, so there is nothing more to lock (PostgreSQL takes an advisory lock).
SELECT 1;

-- name: last_audit
SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1;

-- name: list_audit
SELECT id, at, actor, action, object_type, object_id, detail, prev_hash, hash FROM audit_log
WHERE id > :after ORDER BY id LIMIT :limit;

-- name: find_audit
SELECT id, at, actor, action, object_type, object_id, detail, prev_hash, hash FROM audit_log
WHERE id > :after
  AND (:actor IS NULL OR actor = :actor)
  AND (:action IS NULL OR action = :action)
  AND (:from_at IS NULL OR at >= :from_at)
  AND (:to_at IS NULL OR at < :to_at)
ORDER BY id LIMIT :limit;

-- name: set_notice_reason
UPDATE notices SET reason = :reason WHERE id = :id;

-- name: set_notice_failure_reason
UPDATE notices SET failure_reason = :reason WHERE id = :id;

-- name: failed_notices_per_department
SELECT department, COUNT(*) AS n FROM notices WHERE failure_reason IS NOT NULL GROUP BY department;

-- name: readable_subscriber_ids
SELECT s.id FROM subscribers s
WHERE s.deleted_at IS NULL AND s.id IN (SELECT value FROM json_each(:ids))
  AND (NOT :scoped
       OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                  WHERE st.subscriber_id = s.id AND t.code IN (SELECT value FROM json_each(:scope_topics)))
       OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                  WHERE sg.subscriber_id = s.id AND g.code IN (SELECT value FROM json_each(:scope_groups))));

-- name: insert_notice_decision
INSERT INTO notice_decisions (notice_id, decision, actor, role, department, comment, decided_at)
VALUES (:notice_id, :decision, :actor, :role, :department, :comment, :now);

-- name: list_notice_decisions
SELECT decision, actor, role, department, comment, decided_at, after_the_fact FROM notice_decisions
WHERE notice_id = :notice_id ORDER BY id;

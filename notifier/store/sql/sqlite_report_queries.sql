-- Reach reports and the department assessment (notifier/reports.py). Notices are chosen by creation time;
-- every figure is counted from the deliveries of those notices: to residents (subscriber_id) and printouts (area_code).
-- A resident's town is the first 9 digits of their area code (an erased resident keeps the code).

-- name: report_notices
-- the notices with something in the period: created, submitted, approved or sent by override in it (each figure
-- of the reports then picks its notices by its own moment: notifier.reports)
SELECT id, department, title, severity, state, created_at, submitted_at, approved_at, overridden_at
FROM notices
WHERE (:department IS NULL OR department = :department)
  AND ((created_at >= :from_at AND created_at < :to_at)
    OR (submitted_at >= :from_at AND submitted_at < :to_at)
    OR (approved_at >= :from_at AND approved_at < :to_at)
    OR (overridden_at >= :from_at AND overridden_at < :to_at))
ORDER BY id;

-- name: report_delivery_states
-- messages per notice, channel kind, town and delivery state
SELECT d.notice_id, d.channel, substr(s.area_code, 1, 9) AS town, d.state, COUNT(*) AS n
FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.notice_id IN (SELECT value FROM json_each(:ids))
GROUP BY d.notice_id, d.channel, town, d.state;

-- name: report_failure_reasons
-- failed messages per notice, channel kind, town and reason (the reason code before the first colon)
SELECT d.notice_id, d.channel, substr(s.area_code, 1, 9) AS town,
       COALESCE(NULLIF(trim(substr(d.last_error, 1, instr(d.last_error || ':', ':') - 1)), ''), 'unknown') AS reason,
       COUNT(*) AS n
FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.notice_id IN (SELECT value FROM json_each(:ids)) AND d.state = 'failed'
GROUP BY d.notice_id, d.channel, town, reason;

-- name: report_residents_by_town
-- residents per notice and town: with any message (targeted), with one delivered or confirmed (reached),
-- with one at least sent (sent_to)
SELECT d.notice_id, substr(s.area_code, 1, 9) AS town,
       COUNT(DISTINCT d.subscriber_id) AS targeted,
       COUNT(DISTINCT CASE WHEN d.state IN ('delivered', 'confirmed') THEN d.subscriber_id END) AS reached,
       COUNT(DISTINCT CASE WHEN d.state IN ('sent', 'delivered', 'confirmed') THEN d.subscriber_id END) AS sent_to
FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.notice_id IN (SELECT value FROM json_each(:ids))
GROUP BY d.notice_id, town;

-- name: report_residents_by_channel
SELECT d.notice_id, d.channel,
       COUNT(DISTINCT d.subscriber_id) AS targeted,
       COUNT(DISTINCT CASE WHEN d.state IN ('delivered', 'confirmed') THEN d.subscriber_id END) AS reached,
       COUNT(DISTINCT CASE WHEN d.state IN ('sent', 'delivered', 'confirmed') THEN d.subscriber_id END) AS sent_to
FROM deliveries d
WHERE d.notice_id IN (SELECT value FROM json_each(:ids)) AND d.subscriber_id IS NOT NULL
GROUP BY d.notice_id, d.channel;

-- name: report_first_deliveries
-- each reached resident's first delivery time, per notice, in order: the times to 50 % and 90 % reach
SELECT d.notice_id, MIN(d.delivered_at) AS first_at
FROM deliveries d
WHERE d.notice_id IN (SELECT value FROM json_each(:ids)) AND d.state IN ('delivered', 'confirmed')
  AND d.delivered_at IS NOT NULL AND d.subscriber_id IS NOT NULL
GROUP BY d.notice_id, d.subscriber_id
ORDER BY d.notice_id, first_at;

-- name: report_printouts
-- notice-board printouts sent (or confirmed printed) per notice and village
SELECT a.notice_id, a.area_code, COUNT(*) AS n
FROM deliveries a
WHERE a.notice_id IN (SELECT value FROM json_each(:ids)) AND a.channel = 'bulletin' AND a.area_code IS NOT NULL
  AND a.state IN ('sent', 'delivered')
GROUP BY a.notice_id, a.area_code;

-- name: report_area_names
SELECT code, name FROM areas WHERE code IN (SELECT value FROM json_each(:codes));

-- name: report_last_decisions
SELECT notice_id, MAX(decided_at) AS decided_at FROM notice_decisions
WHERE notice_id IN (SELECT value FROM json_each(:ids)) AND decision = 'rejected'
GROUP BY notice_id;

-- name: report_departments
SELECT code, name FROM departments ORDER BY code;

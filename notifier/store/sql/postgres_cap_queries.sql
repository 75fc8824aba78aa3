-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_cap_queries.sql (docs/storage.md, "Two dialects").
-- (PostgreSQL 15 wants a name for every subquery in FROM)

-- name: list_published_notices
-- written for sqlite 20e0c1b69926
-- Public notices once approved (expired ones stay in the archive), newest first, with the time they were
-- published (the first approval; the last change for a notice sent without one). An area matches the
-- notices addressed to it, to an area above it (its town, the county) or below it, and county-wide ones.
-- :alerts = 1 keeps the alerts only (the CAP feed's): a severity above info, or made from a CAP alert.
SELECT * FROM (
    SELECT n.*, COALESCE((SELECT MIN(d.decided_at) FROM notice_decisions d
                          WHERE d.notice_id = n.id AND d.decision = 'approved'), n.updated_at) AS published_at
    FROM notices n
    WHERE n.public = 1 AND n.state IN ('approved', 'scheduled', 'sending', 'done', 'expired')
      AND (:domain IS NULL OR n.domain = :domain)
      AND (:department IS NULL OR n.department = :department)
      AND (:alerts = 0 OR n.severity != 'info' OR n.cap IS NOT NULL)
      AND (:area IS NULL OR json_array_length(n.target, '$.areas') = 0
           OR EXISTS (SELECT 1 FROM json_each(n.target, '$.areas') a
                      WHERE :area LIKE a.value || '%' OR a.value LIKE :area || '%'))
) AS published
WHERE (:from IS NULL OR published_at >= :from) AND (:to IS NULL OR published_at < :to)
ORDER BY published_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: get_published_notice
-- written for sqlite 1cd936da0688
SELECT * FROM (
    SELECT n.*, COALESCE((SELECT MIN(d.decided_at) FROM notice_decisions d
                          WHERE d.notice_id = n.id AND d.decision = 'approved'), n.updated_at) AS published_at
    FROM notices n
    WHERE n.id = :id AND n.public = 1 AND n.state IN ('approved', 'scheduled', 'sending', 'done', 'expired')
) AS published;

-- name: list_active_public_notices
-- written for sqlite 2ee049fe6f99
-- What a kiosk shows: public notices being sent or sent and not expired, addressed to the area, to an area
-- above it or to the whole county; not those a CAP Cancel withdrew nor those a published update replaced.
SELECT * FROM (
    SELECT n.*, COALESCE((SELECT MIN(d.decided_at) FROM notice_decisions d
                          WHERE d.notice_id = n.id AND d.decision = 'approved'), n.updated_at) AS published_at
    FROM notices n
    WHERE n.public = 1 AND n.state IN ('approved', 'scheduled', 'sending', 'done')
      AND (n.expires_at IS NULL OR n.expires_at > :now)
      AND (json_array_length(n.target, '$.areas') = 0
           OR EXISTS (SELECT 1 FROM json_each(n.target, '$.areas') a WHERE :area LIKE a.value || '%'))
      AND NOT EXISTS (SELECT 1 FROM cap_alerts c WHERE c.notice_id = n.id AND c.msg_type = 'Cancel')
      AND NOT EXISTS (SELECT 1 FROM notices u WHERE u.references_id = n.id AND u.public = 1
                      AND u.state IN ('approved', 'scheduled', 'sending', 'done'))
) AS active
ORDER BY CASE severity WHEN 'extreme' THEN 0 WHEN 'severe' THEN 1 WHEN 'moderate' THEN 2 WHEN 'minor' THEN 3
         ELSE 4 END, published_at DESC
LIMIT :limit;

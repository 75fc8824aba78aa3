-- CAP alerts (notifier/store/cap.py) and the published notices of the public pages, feeds and kiosks
-- (notifier/store/public.py).

-- name: set_notice_disclosure
UPDATE notices SET public = :public, domain = :domain, interpretation = :interpretation WHERE id = :id;

-- name: set_notice_cap
UPDATE notices SET cap = :cap WHERE id = :id;

-- name: find_cap_alert
SELECT * FROM cap_alerts WHERE sender = :sender AND identifier = :identifier;

-- name: insert_cap_alert
INSERT INTO cap_alerts (sender, identifier, sent, msg_type, notice_id, department, received_at)
VALUES (:sender, :identifier, :sent, :msg_type, :notice_id, :department, :now);

-- name: cap_alert_of_notice
SELECT * FROM cap_alerts WHERE notice_id = :notice_id AND msg_type IN ('Alert', 'Update') ORDER BY id LIMIT 1;

-- name: upsert_area_centroid
INSERT INTO area_centroids (code, latitude, longitude, source) VALUES (:code, :latitude, :longitude, :source)
ON CONFLICT (code) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude,
    source = excluded.source;

-- name: area_centroids
SELECT code, latitude, longitude FROM area_centroids;

-- name: area_codes
SELECT code FROM areas;

-- name: list_published_notices
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
)
WHERE (:from IS NULL OR published_at >= :from) AND (:to IS NULL OR published_at < :to)
ORDER BY published_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: get_published_notice
SELECT * FROM (
    SELECT n.*, COALESCE((SELECT MIN(d.decided_at) FROM notice_decisions d
                          WHERE d.notice_id = n.id AND d.decision = 'approved'), n.updated_at) AS published_at
    FROM notices n
    WHERE n.id = :id AND n.public = 1 AND n.state IN ('approved', 'scheduled', 'sending', 'done', 'expired')
);

-- name: list_active_public_notices
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
)
ORDER BY CASE severity WHEN 'extreme' THEN 0 WHEN 'severe' THEN 1 WHEN 'moderate' THEN 2 WHEN 'minor' THEN 3
         ELSE 4 END, published_at DESC
LIMIT :limit;

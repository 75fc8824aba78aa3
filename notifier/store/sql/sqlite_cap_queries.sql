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

-- CAP 1.2 alerts received (POST /api/v1/cap) and what they did: each (sender, identifier) once, so that a
-- repeated alert answers with the notice it made. msg_type Alert and Update made notice_id; Cancel cancelled
-- it. notices.cap keeps the alert a notice came from (JSON of notifier.cap.document.CapAlert) so that
-- GET /notices/{id}/cap.xml gives it back. area_centroids: a point (WGS 84) per area, for CAP polygons and
-- circles.

CREATE TABLE cap_alerts (
    id          INTEGER PRIMARY KEY,
    sender      TEXT NOT NULL,
    identifier  TEXT NOT NULL,
    sent        TEXT NOT NULL,
    msg_type    TEXT NOT NULL,
    notice_id   INTEGER NOT NULL REFERENCES notices (id),
    department  TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (sender, identifier)
);
CREATE INDEX cap_alerts_notice ON cap_alerts (notice_id, msg_type);

ALTER TABLE notices ADD COLUMN cap TEXT;

CREATE TABLE area_centroids (
    code      TEXT PRIMARY KEY REFERENCES areas (code),
    latitude  REAL NOT NULL,
    longitude REAL NOT NULL,
    source    TEXT NOT NULL
);

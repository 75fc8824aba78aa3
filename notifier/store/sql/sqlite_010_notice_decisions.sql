-- Approvals and rejections of notices, each with the approver's comment: who decided (the actor, e.g.
-- "apikey:12"), in which role and department, when and what. notices.reason keeps only the latest words;
-- this is the history GET /notices/{id} shows as decisions.

CREATE TABLE notice_decisions (
    id         INTEGER PRIMARY KEY,
    notice_id  INTEGER NOT NULL REFERENCES notices (id),
    decision   TEXT NOT NULL,   -- approved | rejected
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    department TEXT NOT NULL,
    comment    TEXT,
    decided_at TEXT NOT NULL
);
CREATE INDEX notice_decisions_by_notice ON notice_decisions (notice_id, id);

-- Relief rosters (issue 10): one uploaded list per department, one row per recipient. A row keeps its cells
-- as a JSON object (column -> text) and the resident it matched; rows that matched nobody are kept with the
-- reason, so the report can be read again. Rows are personal data: erased after the department's retention
-- (roster_retention_days after the last notice using the roster ends), the roster itself kept as a tombstone.

CREATE TABLE rosters (
    id            INTEGER PRIMARY KEY,
    department    TEXT NOT NULL REFERENCES departments (code),
    name          TEXT NOT NULL,
    key           TEXT NOT NULL CHECK (key IN ('phone', 'external_id', 'resident_id')),
    columns       TEXT NOT NULL,                 -- JSON list, in the file's order
    rows          INTEGER NOT NULL,
    matched       INTEGER NOT NULL,
    direct        INTEGER NOT NULL DEFAULT 0,    -- unmatched rows with a phone are sent to it directly
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    erased_at     TEXT
);
CREATE INDEX rosters_department ON rosters (department, id);

CREATE TABLE roster_rows (
    roster_id     INTEGER NOT NULL REFERENCES rosters (id) ON DELETE CASCADE,
    row_no        INTEGER NOT NULL,              -- data rows counted from 1, as the report names them
    subscriber_id INTEGER REFERENCES subscribers (id),
    key_value     TEXT,                          -- the identifying cell, normalised (E.164 phone, id); NULL if bad
    cells         TEXT NOT NULL,                 -- JSON object column -> text
    reason        TEXT,                          -- why the row matched no resident; NULL when it did
    PRIMARY KEY (roster_id, row_no)
);
CREATE UNIQUE INDEX roster_rows_subscriber ON roster_rows (roster_id, subscriber_id) WHERE subscriber_id IS NOT NULL;

-- 'consent': the resident subscribed; 'statutory': a phone number from a roster, sent a statutory notice
-- to a beneficiary, never reached by a notice that does not target that roster
ALTER TABLE subscribers ADD COLUMN consent_basis TEXT NOT NULL DEFAULT 'consent';

-- how long roster rows are kept after the last notice using them ends
ALTER TABLE departments ADD COLUMN roster_retention_days INTEGER NOT NULL DEFAULT 180;

ALTER TABLE notices ADD COLUMN roster_id INTEGER REFERENCES rosters (id);
CREATE INDEX notices_roster ON notices (roster_id) WHERE roster_id IS NOT NULL;

-- a publicity notice (公示): the table it publishes and for how long
CREATE TABLE notice_publicity (
    notice_id       INTEGER PRIMARY KEY REFERENCES notices (id),
    roster_id       INTEGER NOT NULL REFERENCES rosters (id),
    columns         TEXT NOT NULL,               -- JSON list of column names
    masks           TEXT NOT NULL DEFAULT '{}',  -- JSON object column -> stricter mask
    from_date       TEXT NOT NULL,               -- YYYY-MM-DD, first day shown
    until_date      TEXT NOT NULL,               -- YYYY-MM-DD, last day shown
    complaint_phone TEXT NOT NULL,
    paper           TEXT NOT NULL DEFAULT 'A4',
    withdrawn_at    TEXT
);

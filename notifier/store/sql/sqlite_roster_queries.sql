-- Relief rosters (notifier/store/rosters.py) and publicity lists.

-- name: insert_roster
INSERT INTO rosters (department, name, key, columns, rows, matched, direct, created_by, created_at)
VALUES (:department, :name, :key, :columns, :rows, 0, :direct, :created_by, :now)
RETURNING id;

-- name: insert_roster_row
INSERT INTO roster_rows (roster_id, row_no, key_value, cells, reason)
VALUES (:roster_id, :row_no, :key_value, :cells, :reason);

-- name: roster_matches_phone
SELECT r.row_no, s.id AS subscriber_id FROM roster_rows r
JOIN subscribers s ON s.phone = r.key_value AND s.deleted_at IS NULL
WHERE r.roster_id = :roster_id ORDER BY r.row_no;

-- name: roster_matches_external_id
SELECT r.row_no, s.id AS subscriber_id FROM roster_rows r
JOIN subscribers s ON s.external_id = r.key_value AND s.deleted_at IS NULL
WHERE r.roster_id = :roster_id ORDER BY r.row_no;

-- name: roster_matches_resident_id
SELECT r.row_no, s.id AS subscriber_id FROM roster_rows r
JOIN subscribers s ON s.id = CAST(r.key_value AS INTEGER) AND s.deleted_at IS NULL
WHERE r.roster_id = :roster_id ORDER BY r.row_no;

-- name: set_roster_row_match
UPDATE roster_rows SET subscriber_id = :subscriber_id, reason = :reason
WHERE roster_id = :roster_id AND row_no = :row_no;

-- name: set_roster_matched
UPDATE rosters SET matched = :matched WHERE id = :id;

-- name: get_roster
SELECT * FROM rosters WHERE id = :id;

-- name: roster_unmatched
SELECT row_no, reason FROM roster_rows WHERE roster_id = :roster_id AND reason IS NOT NULL ORDER BY row_no;

-- name: roster_direct_count
SELECT COUNT(*) FROM roster_rows r JOIN subscribers s ON s.id = r.subscriber_id
WHERE r.roster_id = :roster_id AND s.consent_basis = 'statutory';

-- name: list_roster_rows
SELECT row_no, subscriber_id, cells, reason FROM roster_rows
WHERE roster_id = :roster_id AND row_no > :after ORDER BY row_no LIMIT :limit;

-- name: roster_cells_of
-- the rows of a roster for some of its residents: what a batch of personal messages is completed with
-- (CROSS JOIN fixes the order: each id looked up in roster_rows_subscriber, never a walk of the whole roster)
SELECT r.subscriber_id, r.cells FROM json_each(:ids) j
CROSS JOIN roster_rows r ON r.roster_id = :roster_id AND r.subscriber_id = j.value;

-- name: roster_subscriber_ids
SELECT subscriber_id FROM roster_rows
WHERE roster_id = :roster_id AND subscriber_id IS NOT NULL ORDER BY subscriber_id;

-- name: roster_sample_cells
SELECT row_no, subscriber_id, cells FROM roster_rows
WHERE roster_id = :roster_id AND subscriber_id IS NOT NULL ORDER BY row_no;

-- name: erase_roster_rows
DELETE FROM roster_rows WHERE roster_id = :roster_id;

-- name: mark_roster_erased
UPDATE rosters SET erased_at = :now WHERE id = :id AND erased_at IS NULL;

-- name: roster_notices_active
-- notices using the roster (as target or publicity list) that have not ended
SELECT n.id FROM notices n
WHERE (n.roster_id = :roster_id OR n.id IN (SELECT notice_id FROM notice_publicity WHERE roster_id = :roster_id))
  AND n.state IN ('draft', 'pending_approval', 'approved', 'scheduled', 'sending');

-- name: rosters_past_retention
-- Rosters not erased whose retention has run out: :now (epoch seconds) is past the department's
-- roster_retention_days after the last of its notices ended (its last update once done, cancelled, rejected
-- or expired; a publicity list ends on its last day), or after the upload when no notice ever used it.
-- A roster a live notice still uses is never due.
SELECT r.id, r.department FROM rosters r JOIN departments d ON d.code = r.department
WHERE r.erased_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM notices n
      WHERE (n.roster_id = r.id OR n.id IN (SELECT notice_id FROM notice_publicity WHERE roster_id = r.id))
        AND n.state IN ('draft', 'pending_approval', 'approved', 'scheduled', 'sending'))
  AND :now > d.roster_retention_days * 86400 + MAX(
      unixepoch(r.created_at),
      COALESCE((SELECT MAX(unixepoch(n.updated_at)) FROM notices n WHERE n.roster_id = r.id), 0),
      COALESCE((SELECT MAX(unixepoch(p.until_date) + 86400) FROM notice_publicity p WHERE p.roster_id = r.id), 0))
LIMIT :limit;

-- name: set_notice_roster
UPDATE notices SET roster_id = :roster_id WHERE id = :id;

-- name: insert_notice_publicity
INSERT INTO notice_publicity (notice_id, roster_id, columns, masks, from_date, until_date, complaint_phone, paper)
VALUES (:notice_id, :roster_id, :columns, :masks, :from_date, :until_date, :complaint_phone, :paper);

-- name: delete_notice_publicity
DELETE FROM notice_publicity WHERE notice_id = :notice_id;

-- name: get_notice_publicity
SELECT * FROM notice_publicity WHERE notice_id = :notice_id;

-- name: publicity_rows
-- the publicity table's rows, with the matched resident's name and village, in roster order; :area limits
-- them to one village (or town: a code covers those under it), NULL gives every row
SELECT r.row_no, r.cells, s.name AS resident_name, s.area_code, a.name AS area_name
FROM roster_rows r
LEFT JOIN subscribers s ON s.id = r.subscriber_id
LEFT JOIN areas a ON a.code = s.area_code
WHERE r.roster_id = :roster_id AND r.reason IS NULL
  AND (:area IS NULL OR (s.area_code >= :area AND s.area_code < :area || ':'))
ORDER BY s.area_code, r.row_no;

-- name: publicity_to_withdraw
-- publicity lists whose last day (:today, YYYY-MM-DD in the server's timezone) has passed and that are not
-- withdrawn yet
SELECT notice_id, until_date AS until FROM notice_publicity
WHERE withdrawn_at IS NULL AND until_date < :today LIMIT :limit;

-- name: withdraw_publicity
UPDATE notice_publicity SET withdrawn_at = :now WHERE notice_id = :notice_id AND withdrawn_at IS NULL;

-- name: county_area
SELECT code FROM areas WHERE level = 'county' ORDER BY code LIMIT 1;

-- name: set_consent_basis
UPDATE subscribers SET consent_basis = :basis WHERE id = :id;

-- name: set_roster_retention
UPDATE departments SET roster_retention_days = :days WHERE code = :department;

-- name: list_department_rosters
SELECT id, name, key, columns, rows, matched, created_at, erased_at FROM rosters
WHERE :department IS NULL OR department = :department ORDER BY id DESC LIMIT :limit;

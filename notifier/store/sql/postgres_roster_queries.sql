-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_roster_queries.sql (docs/storage.md, "Two dialects").

-- name: roster_cells_of
-- written for sqlite c41a65cc0e80
-- the rows of a roster for some of its residents: each id looked up in roster_rows_subscriber
SELECT r.subscriber_id, r.cells FROM roster_rows r
WHERE r.roster_id = :roster_id AND r.subscriber_id = ANY(:ids);

-- name: rosters_past_retention
-- written for sqlite ecfd4a8054fe
-- (SQLite's MAX of several values is GREATEST here)
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
  AND :now > d.roster_retention_days * 86400 + GREATEST(
      unixepoch(r.created_at),
      COALESCE((SELECT MAX(unixepoch(n.updated_at)) FROM notices n WHERE n.roster_id = r.id), 0),
      COALESCE((SELECT MAX(unixepoch(p.until_date) + 86400) FROM notice_publicity p WHERE p.roster_id = r.id), 0))
LIMIT :limit;

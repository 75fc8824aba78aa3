-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_feedback_queries.sql (docs/storage.md, "Two dialects").

-- name: reminder_candidates
-- written for sqlite 82f09d05e57c
-- (every selected column grouped: PostgreSQL does not take a bare column beside aggregates)
-- Residents of the notice with a message sent at or before :cutoff, none confirmed, none still on its way,
-- and no reminder yet: (resident, the highest rank and its priority and deadline, for the next delivery)
SELECT d.notice_id, d.subscriber_id, MAX(d.rank) AS rank, MAX(d.priority) AS priority, MAX(d.deadline) AS deadline
FROM deliveries d
WHERE d.notice_id = :notice_id AND d.subscriber_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM confirmation_reminders r
                  WHERE r.notice_id = d.notice_id AND r.subscriber_id = d.subscriber_id)
GROUP BY d.notice_id, d.subscriber_id
HAVING SUM(d.state IN ('sent', 'delivered') AND d.sent_at <= :cutoff) > 0
   AND SUM(d.state IN ('confirmed', 'queued', 'sending')) = 0
ORDER BY d.subscriber_id
LIMIT :limit;

-- name: lock_feedback_source
-- written for sqlite d222073d8a34
-- Transactions run side by side here: forms at once from one client address each counted the forms committed
-- before them, none of the others, and each was taken past [feedback] form_per_hour. So the transaction first
-- takes a transaction advisory lock on the source's hash, and its count, a statement of its own after the lock,
-- sees what the one before it committed. The two-key form keeps it apart from the other locks: "fdbk", then a hash
-- of the source hash (two sources with one hash wait for each other, no more); released at commit.
SELECT pg_advisory_xact_lock(1717854827, hashtext(CAST(:source_hash AS text)));

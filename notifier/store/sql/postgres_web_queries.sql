-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_web_queries.sql (docs/storage.md, "Two dialects").

-- name: web_town
-- written for sqlite 607eab84f2fb
-- A town with its county's name, and its villages (code, name) in code order, as JSON.
SELECT t.code, t.name AS town, c.name AS county,
       (SELECT json_group_array(json_build_object('code', v.code, 'name', v.name))
        FROM (SELECT code, name FROM areas WHERE parent = t.code AND level = 'village' ORDER BY code) v) AS villages
FROM areas t LEFT JOIN areas c ON c.code = t.parent
WHERE t.code = :code AND t.level = 'town';

-- name: lock_code_requests
-- written for sqlite 4e7dbcd88417
-- Transactions run side by side here: requests at once for one number (or from one client address) each counted
-- the requests committed before them, none of the others, and each sent a code: the limits were no limits. So the
-- transaction first takes a transaction advisory lock on the address and one on the client address, and its
-- count, a statement of its own after the locks, sees what the one before it committed. The two-key form keeps
-- these apart from the other locks: "code", then a hash of "to <address>" or "from <client address>" (two with
-- one hash wait for each other, no more). In key order, so that two requests sharing one of them wait instead of
-- deadlocking; released at commit.
SELECT pg_advisory_xact_lock(1668244581, k.key)
FROM (SELECT DISTINCT hashtext(v.name) AS key
      FROM (VALUES (CAST(:address AS text)), (CAST(:client_ip AS text))) AS v (name)) AS k
ORDER BY k.key;

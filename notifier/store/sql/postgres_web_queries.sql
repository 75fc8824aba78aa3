-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_web_queries.sql (docs/storage.md, "Two dialects").

-- name: web_town
-- written for sqlite 607eab84f2fb
-- A town with its county's name, and its villages (code, name) in code order, as JSON.
SELECT t.code, t.name AS town, c.name AS county,
       (SELECT json_group_array(json_build_object('code', v.code, 'name', v.name))
        FROM (SELECT code, name FROM areas WHERE parent = t.code AND level = 'village' ORDER BY code) v) AS villages
FROM areas t LEFT JOIN areas c ON c.code = t.parent
WHERE t.code = :code AND t.level = 'town';

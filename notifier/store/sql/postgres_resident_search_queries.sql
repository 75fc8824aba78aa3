-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_resident_search_queries.sql (docs/storage.md, "Two dialects").

-- name: search_subscribers
-- written for sqlite 368a69627bf3
-- (a negative start counts from the end in SQLite's substr, not in PostgreSQL's: right() here)
-- list_subscribers (the same scope rule) narrowed by a part of the name and the end of the phone number.
SELECT s.* FROM subscribers s
WHERE s.deleted_at IS NULL AND s.id > :after
  AND (:area_lo IS NULL OR (s.area_code >= :area_lo AND s.area_code < :area_hi))
  AND (:group IS NULL OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                                 WHERE sg.subscriber_id = s.id AND g.code = :group))
  AND (:topic IS NULL OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                                 WHERE st.subscriber_id = s.id AND t.code = :topic))
  AND (:name IS NULL OR instr(s.name, :name) > 0)
  AND (:phone IS NULL OR right(s.phone, length(:phone)) = :phone)
  AND (NOT :scoped
       OR EXISTS (SELECT 1 FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id
                  WHERE st.subscriber_id = s.id AND t.code IN (SELECT value FROM json_each(:scope_topics)))
       OR EXISTS (SELECT 1 FROM subscriber_groups sg JOIN resident_groups g ON g.id = sg.group_id
                  WHERE sg.subscriber_id = s.id AND g.code IN (SELECT value FROM json_each(:scope_groups))))
ORDER BY s.id LIMIT :limit;

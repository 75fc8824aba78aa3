-- Templates and their versions (migration 013).

-- name: insert_template
INSERT INTO templates (name, department, latest, created_at, updated_at)
VALUES (:name, :department, 1, :now, :now)
ON CONFLICT (name) DO NOTHING
RETURNING id;

-- name: bump_template
UPDATE templates SET latest = latest + 1, updated_at = :now WHERE id = :id RETURNING latest;

-- name: insert_template_version
INSERT INTO template_versions (template_id, version, description, fields, texts, created_by, created_at)
VALUES (:template_id, :version, :description, :fields, :texts, :created_by, :now);

-- name: get_template_head
SELECT id, name, department, latest FROM templates WHERE name = :name;

-- name: get_template_version
-- :version NULL means the latest
SELECT t.name, t.department, v.version, v.description, v.fields, v.texts, v.created_by, v.created_at
FROM templates t JOIN template_versions v ON v.template_id = t.id
WHERE t.name = :name AND v.version = COALESCE(:version, t.latest);

-- name: list_templates
SELECT t.id, t.name, t.department, v.version, v.description, v.fields, v.texts, v.created_by, v.created_at
FROM templates t JOIN template_versions v ON v.template_id = t.id AND v.version = t.latest
WHERE t.id > :after
ORDER BY t.id LIMIT :limit;

-- name: list_template_versions
-- newest first; the cursor is the version number
SELECT t.name, t.department, v.version AS id, v.version, v.description, v.fields, v.texts, v.created_by,
       v.created_at
FROM templates t JOIN template_versions v ON v.template_id = t.id
WHERE t.name = :name AND v.version < :before
ORDER BY v.version DESC LIMIT :limit;

-- name: template_names
SELECT name FROM templates;

-- name: latest_template_version
SELECT latest FROM templates WHERE name = :name;

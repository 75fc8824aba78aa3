-- Templates in the database, versioned: a save never edits a version, it adds the next one. A notice
-- records the version it was checked against at creation (notices.template_version) and renders with it,
-- whatever was saved after. The built-in templates under templates/ are seeded as version 1 by the store
-- (TemplateRepository.seed_builtin_templates), not here: the files are read at run time.

CREATE TABLE templates (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    department TEXT REFERENCES departments (code),   -- the owner; NULL for a built-in template
    latest     INTEGER NOT NULL,                      -- the highest version
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE template_versions (
    template_id INTEGER NOT NULL REFERENCES templates (id),
    version     INTEGER NOT NULL,
    description TEXT NOT NULL,
    fields      TEXT NOT NULL,   -- JSON list of {"name", "label", "sample"}
    texts       TEXT NOT NULL,   -- JSON {language: {slot: source}}
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- NULL for a notice created before templates were versioned: it renders with the latest version
ALTER TABLE notices ADD COLUMN template_version INTEGER;

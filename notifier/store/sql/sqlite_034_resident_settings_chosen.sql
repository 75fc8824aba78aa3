-- When the resident last saved their own settings (channels and their order, quiet hours, language) on their
-- page: from then on those are the resident's choice, which a department's key does not change
-- (store.subscribers, _check_residents_settings_kept). NULL: set by departments only, as before this version.
-- postgres_034_resident_settings_chosen.sql does the same.
ALTER TABLE subscribers ADD COLUMN settings_chosen_at TEXT;

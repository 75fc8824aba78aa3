-- Named SQL blocks for editing a notice before it is approved (SQLite).

-- name: edit_notice
-- A draft's or a rejected notice's content replaced; it is a draft again (to be submitted anew). Its reason
-- (the rejection's comment) and its decisions stay, so the history shows why it was edited.
UPDATE notices SET topic = :topic, title = :title, body = :body, template = :template,
    template_version = :template_version, data = :data,
    severity = :severity, target = :target, channels = :channels, channel_mode = :channel_mode,
    send_at = :send_at, expires_at = :expires_at, references_id = :references_id, state = 'draft',
    approved_by = NULL, updated_at = :now
WHERE id = :id AND state IN ('draft', 'rejected')
RETURNING id;

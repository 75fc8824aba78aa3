-- Notices a department makes public (the portal column /public/notices, its Atom feed and the kiosks): the
-- flag, the disclosure plan's domain (a code of notifier.domain.disclosure) and the plain-language
-- interpretation (政策解读) shown beside the official text.

ALTER TABLE notices ADD COLUMN public BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notices ADD COLUMN domain TEXT;
ALTER TABLE notices ADD COLUMN interpretation TEXT;
CREATE INDEX notices_public ON notices (public, state);

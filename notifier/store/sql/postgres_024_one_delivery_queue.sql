-- One delivery queue (as sqlite_024_one_delivery_queue.sql): a delivery's target is a resident (subscriber_id)
-- or an area (area_code, kinds `bot` and `bulletin`, the area code as recipient), exactly one of the two. The
-- area deliveries of migration 003 move into `deliveries` (new ids after the residents'), keeping their
-- history. PostgreSQL drops NOT NULL in place, so unlike SQLite the table is altered, not rebuilt.

ALTER TABLE deliveries ALTER COLUMN subscriber_id DROP NOT NULL;
ALTER TABLE deliveries ADD COLUMN area_code TEXT REFERENCES areas (code);
ALTER TABLE deliveries ADD COLUMN poll_until DOUBLE PRECISION;  -- area, sent: stop asking after this

INSERT INTO deliveries (notice_id, subscriber_id, area_code, channel, alias, rank, state, priority, attempts,
                        due_at, deadline, poll_until, lease_until, leased_by, address, provider_message_id,
                        last_error, created_at, updated_at, sent_at, delivered_at)
SELECT notice_id, NULL, area_code, channel, alias, 0, state, priority, attempts,
       due_at, deadline, poll_until, lease_until, leased_by, area_code, provider_message_id,
       last_error, created_at, updated_at, sent_at, delivered_at
FROM area_deliveries ORDER BY id;

DROP TABLE area_deliveries;

ALTER TABLE deliveries ADD CONSTRAINT deliveries_one_target CHECK ((subscriber_id IS NULL) <> (area_code IS NULL));
-- one area delivery per (notice, area, kind), as one resident delivery per (notice, resident, kind)
CREATE UNIQUE INDEX deliveries_area ON deliveries (notice_id, area_code, channel) WHERE area_code IS NOT NULL;

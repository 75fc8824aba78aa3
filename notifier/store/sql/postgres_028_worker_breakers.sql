-- The circuit breakers of each worker's failover aliases (channels.failover live in the worker's memory),
-- written with its heartbeat so that the console of any node, an API node with no engine included, shows
-- them: JSON {"<failover alias>": {"<member alias>": "closed" | "open" | "half-open"}}, NULL when the worker
-- has no failover alias. A worker forgotten as dead takes its states with it.
ALTER TABLE workers ADD COLUMN breakers TEXT;

-- The nodes sharing this database (openfc-core::cluster): each registers itself at start and heartbeats;
-- a node whose heartbeat is older than the dead bound is no longer counted. Rows of nodes gone for an hour
-- are pruned by the next clean stop.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
CREATE INDEX nodes_heartbeat ON nodes(heartbeat_ms);

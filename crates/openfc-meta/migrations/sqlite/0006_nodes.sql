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

-- The function instances each node runs, as it last reported them (ListInstances answers from here, counting
-- only live nodes).
CREATE TABLE node_instances (
    node_id TEXT NOT NULL,
    id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    service_name TEXT NOT NULL,
    function_name TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (node_id, id)
);
CREATE INDEX node_instances_function ON node_instances(account_id, service_name, function_name);

-- Signatures of mutating requests accepted by any node, until the clock-skew window would refuse them anyway:
-- a request replayed to another node is refused there too (openfc-core::cluster::SignatureLedger).
CREATE TABLE seen_signatures (
    key TEXT PRIMARY KEY,
    first_seen_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    holder TEXT NOT NULL
);
CREATE INDEX seen_signatures_expiry ON seen_signatures(expires_ms);

-- Durable asynchronous invocations (openfc-core::asyncq): one row per event, claimed by any node with a
-- conditional UPDATE (lease_owner, lease_until_ms), so several nodes on one database never run it at once.
CREATE TABLE async_events (
    account_id TEXT COLLATE "C" NOT NULL,
    service_name TEXT COLLATE "C" NOT NULL,
    function_name TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    qualifier TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    started_ms BIGINT,
    ended_ms BIGINT,
    error TEXT,
    result TEXT,
    source TEXT NOT NULL,
    PRIMARY KEY (account_id, service_name, function_name, id)
);
CREATE INDEX async_events_due ON async_events(status, due_ms);
CREATE INDEX async_events_lease ON async_events(status, lease_until_ms);
CREATE INDEX async_events_ended ON async_events(ended_ms);

-- Timer triggers: when each fires next, and the schedule that time was computed from.
CREATE TABLE timers (
    key TEXT COLLATE "C" PRIMARY KEY,
    next_ms BIGINT NOT NULL,
    stamp TEXT NOT NULL
);

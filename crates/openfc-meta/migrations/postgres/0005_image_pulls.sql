-- Custom-container image pulls (openfc-core::images): one row per Create/UpdateFunction that set an image,
-- named by the function's stored configuration (`_image.pull`) and by the versions published from it. The
-- node running a pull holds a lease; any node takes over a Preparing pull whose lease ended.
CREATE TABLE image_pulls (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    -- 1 when the function sets customContainerConfig.command (an image without ENTRYPOINT or CMD can then run).
    has_command BIGINT NOT NULL,
    -- 1 once the function naming it is written (before that, no user is not proof of garbage).
    named BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    image TEXT,
    owner TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX image_pulls_status_lease ON image_pulls(status, lease_until_ms);
CREATE INDEX image_pulls_reference ON image_pulls(reference);

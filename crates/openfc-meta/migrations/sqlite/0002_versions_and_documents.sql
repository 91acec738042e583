-- Versions: immutable snapshots of a service and its functions. Ids come from services.last_version and are
-- never reused after a delete.
ALTER TABLE services ADD COLUMN last_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE versions (
    account_id TEXT NOT NULL,
    service_name TEXT NOT NULL,
    version_id BIGINT NOT NULL,
    description TEXT NOT NULL,
    service_config TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_time TEXT NOT NULL,
    modified_time TEXT NOT NULL,
    PRIMARY KEY (account_id, service_name, version_id),
    FOREIGN KEY (account_id, service_name) REFERENCES services(account_id, name)
);

CREATE TABLE version_functions (
    account_id TEXT NOT NULL,
    service_name TEXT NOT NULL,
    version_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    config TEXT NOT NULL,
    code_key TEXT,
    code_checksum TEXT,
    code_size BIGINT,
    etag TEXT NOT NULL,
    created_time TEXT NOT NULL,
    modified_time TEXT NOT NULL,
    PRIMARY KEY (account_id, service_name, version_id, name),
    FOREIGN KEY (account_id, service_name, version_id)
        REFERENCES versions(account_id, service_name, version_id) ON DELETE CASCADE
);
CREATE INDEX version_functions_code_key ON version_functions(code_key);

-- Layers: versions numbered from layers.last_version, each with its own package.
CREATE TABLE layers (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    last_version BIGINT NOT NULL,
    acl BIGINT NOT NULL,
    created_time TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE layer_versions (
    account_id TEXT NOT NULL,
    layer_name TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    code_key TEXT NOT NULL,
    code_checksum TEXT NOT NULL,
    code_size BIGINT NOT NULL,
    created_time TEXT NOT NULL,
    PRIMARY KEY (account_id, layer_name, version),
    FOREIGN KEY (account_id, layer_name) REFERENCES layers(account_id, name)
);
CREATE INDEX layer_versions_code_key ON layer_versions(code_key);

-- Resources that are a JSON document under a key: aliases, triggers, custom domains, provision, on-demand and
-- async-invoke configs, tags. `key` embeds the parents ("svc/alias", "svc/fn/trigger") so a prefix lists children.
CREATE TABLE documents (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    etag TEXT NOT NULL,
    created_time TEXT NOT NULL,
    modified_time TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, key)
);

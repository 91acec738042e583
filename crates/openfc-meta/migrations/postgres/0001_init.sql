-- openfc metadata, PostgreSQL dialect. Names use COLLATE "C" so lists sort in byte order, as FC does.
CREATE TABLE accounts (
    id TEXT COLLATE "C" PRIMARY KEY,
    created_time TEXT NOT NULL
);

CREATE TABLE access_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    sealed_secret TEXT NOT NULL,
    status TEXT NOT NULL,
    created_time TEXT NOT NULL
);

CREATE TABLE services (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    name TEXT COLLATE "C" NOT NULL,
    id TEXT NOT NULL,
    config TEXT NOT NULL,
    etag TEXT NOT NULL,
    created_time TEXT NOT NULL,
    modified_time TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE functions (
    account_id TEXT COLLATE "C" NOT NULL,
    service_name TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    id TEXT NOT NULL,
    config TEXT NOT NULL,
    code_key TEXT COLLATE "C",
    code_checksum TEXT,
    code_size BIGINT,
    etag TEXT NOT NULL,
    created_time TEXT NOT NULL,
    modified_time TEXT NOT NULL,
    PRIMARY KEY (account_id, service_name, name),
    FOREIGN KEY (account_id, service_name) REFERENCES services(account_id, name)
);
CREATE INDEX functions_code_key ON functions(code_key);

-- Every stored package has a row here before its object is written; the collector deletes only rows
-- that no function references and nobody touched within the grace period.
CREATE TABLE code_packages (
    key TEXT COLLATE "C" PRIMARY KEY,
    checksum TEXT NOT NULL,
    size BIGINT NOT NULL,
    state TEXT NOT NULL,
    touched_at BIGINT NOT NULL,
    deleting_since BIGINT
);

-- One row, inserted with the first account: nodes racing through first start create one account, not two.
CREATE TABLE bootstrap (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL
);

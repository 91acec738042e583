-- A key may carry a RAM-style policy (openfc-core::policy); NULL: the account's root key.
ALTER TABLE access_keys ADD COLUMN policy TEXT;

-- Core schema: migration tracking and the principals that may call the gateway.
--
-- schema_migrations is also created by the migration runner (CREATE TABLE IF NOT EXISTS) before it
-- reads it, so the runner can record this very migration; the statement here documents the shape.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,          -- SHA-256 (hex) of the migration file when it was applied
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- A principal is a caller identity with exactly one role. Its API token is never stored: only the
-- keyed BLAKE2b-256 hash of the token under the gateway's master key (docs/operations.md).
CREATE TABLE principals (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$'),
    role         text NOT NULL CHECK (role IN ('admin', 'publisher', 'partner', 'auditor')),
    agency       text,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    public_key   bytea CHECK (public_key IS NULL OR length(public_key) = 32),  -- partner X25519 key
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

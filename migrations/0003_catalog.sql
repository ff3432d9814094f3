-- Agency sources, datasets, versioned release policies and extracts.

CREATE TABLE sources (
    name                text PRIMARY KEY,
    agency              text NOT NULL,
    -- libpq conninfo sealed with crypto_secretbox under the gateway master key; never returned.
    conninfo_nonce      bytea NOT NULL,
    conninfo_sealed     bytea NOT NULL,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE datasets (
    name        text PRIMARY KEY,
    agency      text NOT NULL,
    source      text NOT NULL REFERENCES sources (name),
    definition  jsonb NOT NULL,           -- table, columns with type and role, hierarchies
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change of a policy is a new immutable version; (dataset, policy, version) never changes.
CREATE TABLE policies (
    dataset          text NOT NULL REFERENCES datasets (name),
    name             text NOT NULL,
    current_version  integer NOT NULL,
    retired_at       timestamptz,
    PRIMARY KEY (dataset, name)
);

CREATE TABLE policy_versions (
    dataset       text NOT NULL,
    name          text NOT NULL,
    version       integer NOT NULL CHECK (version >= 1),
    content_hash  text NOT NULL,          -- hex SHA-256 of the canonical policy bytes
    document      text NOT NULL,          -- the policy JSON as submitted
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, name, version),
    FOREIGN KEY (dataset, name) REFERENCES policies (dataset, name) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE extracts (
    id                     text PRIMARY KEY,
    dataset                text NOT NULL,
    policy                 text NOT NULL,
    policy_version         integer NOT NULL,
    policy_hash            text NOT NULL,
    recipient              text NOT NULL,
    purpose                text NOT NULL,
    format                 text NOT NULL,
    status                 text NOT NULL CHECK (status IN ('requested', 'completed', 'aborted')),
    requested_at           timestamptz NOT NULL DEFAULT now(),
    finished_at            timestamptz,
    requested_entry_index  bigint NOT NULL,
    finished_entry_index   bigint,
    manifest               text,          -- canonical manifest JSON (docs/formats/manifest.md)
    manifest_signature     text           -- base64 Ed25519 signature over the manifest bytes
);
CREATE INDEX extracts_recipient_day ON extracts (recipient, dataset, policy, requested_at);

-- What each release let a recipient see, per (recipient, dataset, key scope): the ledger the
-- linkage check reads (docs/security.md, "Releases that could be joined"). A row is written when an
-- extract starts streaming (any byte may then reach the partner, so an extract that is cut short
-- counts too), in the transaction that moves the extract to 'requested'. key_scope is what keys the
-- release's pseudonyms and date shifts: the policy's name, or its linkage group "a+b" (a policy's
-- `linkable_with`); releases in one key scope share pseudonyms and can be joined on them.
CREATE TABLE release_ledger (
    extract_id      text PRIMARY KEY REFERENCES extracts (id),
    recipient       text NOT NULL,
    dataset         text NOT NULL,
    key_scope       text NOT NULL,
    policy          text NOT NULL,
    policy_version  integer NOT NULL CHECK (policy_version >= 1),
    disclosed       jsonb NOT NULL,   -- quasi-identifiers with levels or the Mondrian partitioning, pseudonymized columns, row filter
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX release_ledger_scope ON release_ledger (recipient, dataset, key_scope, created_at);

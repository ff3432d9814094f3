-- Named groups of partner principals. A policy recipient "group:NAME" admits every partner that is
-- a member of the group NAME at the moment of the request: membership is read per request, so
-- adding or removing a member takes effect at once in every gateway process (docs/policies.md).
--
-- Group names follow the principal name rules (they appear in policies as "group:NAME").
-- Membership references principals by id, so renaming is impossible by construction and a
-- principal can never be deleted while it is a member (principals are disabled, never deleted).
CREATE TABLE principal_groups (
    name         text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$'),
    description  text NOT NULL DEFAULT '',
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE principal_group_members (
    group_name    text NOT NULL REFERENCES principal_groups (name) ON DELETE CASCADE,
    principal_id  bigint NOT NULL REFERENCES principals (id),
    added_by      text NOT NULL,
    added_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, principal_id)
);
-- Authorization asks "which groups is this partner in?" on every extract request.
CREATE INDEX principal_group_members_principal ON principal_group_members (principal_id, group_name);

-- Differentially private aggregate answers (POST /v1/queries, docs/aggregates.md).
--
-- privacy_budget holds, per policy (all its versions), recipient and budget period, the epsilon and
-- delta spent so far. A query locks its row (INSERT ... ON CONFLICT DO UPDATE), checks the
-- remaining budget under the lock, adds its spend and inserts its answer into privacy_answers, all
-- in one transaction that commits only after the query's audit entry has committed: concurrent
-- queries of one recipient are serialized on the row and cannot overspend, and no answer leaves
-- without its spend and its entry. period_start is the start of the calendar day, month or year
-- (UTC) the spend belongs to, or -infinity for a lifetime budget.
CREATE TABLE privacy_budget (
    dataset        text NOT NULL,
    policy         text NOT NULL,
    recipient      text NOT NULL,
    period_start   timestamptz NOT NULL,
    epsilon_spent  double precision NOT NULL DEFAULT 0 CHECK (epsilon_spent >= 0),
    delta_spent    double precision NOT NULL DEFAULT 0 CHECK (delta_spent >= 0),
    queries        bigint NOT NULL DEFAULT 0 CHECK (queries >= 0),
    PRIMARY KEY (dataset, policy, recipient, period_start)
);

CREATE TABLE privacy_answers (
    query_id        text PRIMARY KEY,
    dataset         text NOT NULL,
    policy          text NOT NULL,
    policy_version  integer NOT NULL,
    recipient       text NOT NULL,
    answered_at     timestamptz NOT NULL DEFAULT now(),
    period_start    timestamptz NOT NULL,
    epsilon         double precision NOT NULL CHECK (epsilon > 0),
    delta           double precision NOT NULL DEFAULT 0 CHECK (delta >= 0),
    audit_index     bigint NOT NULL,
    answer          text NOT NULL
);
CREATE INDEX privacy_answers_by_recipient ON privacy_answers (recipient, answered_at);

-- A counter of changes to what the partner catalog lists. Every statement that changes datasets,
-- policies or policy_versions (by the gateway or by hand) adds one to it, in the same transaction,
-- so the counter a reader sees and the rows it sees belong to one snapshot. A gateway process keeps
-- the parsed catalog (datasets and the current version of each active policy) in memory and uses it
-- while the counter is unchanged; a partner's GET /v1/catalog then costs one statement (the counter,
-- the partner's group memberships and today's extract counts) instead of one per policy. Changes
-- made through another gateway process, or directly in the database, are seen by the next request.
CREATE TABLE catalog_generation (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation  bigint NOT NULL
);
INSERT INTO catalog_generation (only_row, generation) VALUES (true, 1);

CREATE FUNCTION catalog_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER datasets_catalog_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON datasets
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_generation_bump();
CREATE TRIGGER policies_catalog_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_generation_bump();
CREATE TRIGGER policy_versions_catalog_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_generation_bump();

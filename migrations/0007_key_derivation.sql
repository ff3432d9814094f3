-- Keyed transforms (pseudonymize, date_shift) are keyed per (dataset, policy, recipient) — key
-- derivation 2 — so that two releases of one dataset under two policies cannot be joined on their
-- pseudonyms (docs/formats/csv-and-hierarchies.md, "Keyed transforms"). Every extract made before
-- this migration used derivation 1, keyed per (dataset, recipient); a (dataset, policy, recipient)
-- that already received such a release keeps derivation 1 so that its pseudonyms stay stable
-- (gateway/release/key_scope.hpp). The manifest of each completed extract states its derivation.
ALTER TABLE extracts ADD COLUMN key_derivation smallint CHECK (key_derivation IN (1, 2));
UPDATE extracts SET key_derivation = 1;
ALTER TABLE extracts ALTER COLUMN key_derivation SET NOT NULL;

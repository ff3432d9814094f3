-- Which gateway process streams an extract, so that an extract left 'requested' by a process that
-- died (kill -9, power loss) can be told apart from one another live process is still streaming.
-- Each process picks a random instance number at start and holds the session advisory lock
-- (1668641641, instance) on its readiness connection while it runs; an extract whose instance holds
-- no such lock was interrupted, and the sweeper (gateway/release/extract_sweeper.hpp) records it
-- as aborted. Rows from before this migration have no instance and count as interrupted.
ALTER TABLE extracts ADD COLUMN gateway_instance integer CHECK (gateway_instance > 0);
CREATE INDEX extracts_in_progress ON extracts (requested_at) WHERE status = 'requested';

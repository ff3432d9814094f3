-- An extract gets its row as soon as its "extract.requested" entry is written, before the source is
-- read, so that a request the gateway stops serving during the search (kill -9, OOM) is closed by
-- the interrupted-extract sweeper like one cut off mid-stream. Two statuses are added:
--   preparing     the entry is written; the source is being read and searched; no byte was sent
--   not_released  closed before streaming (refused by a model or the row limit, a source error, or
--                 interrupted while preparing); nothing was released and it is not counted against
--                 the daily limit
-- 'requested' keeps its meaning: streaming to the partner.
ALTER TABLE extracts DROP CONSTRAINT extracts_status_check;
ALTER TABLE extracts ADD CONSTRAINT extracts_status_check
    CHECK (status IN ('preparing', 'requested', 'completed', 'not_released', 'aborted'));
DROP INDEX extracts_in_progress;
CREATE INDEX extracts_in_progress ON extracts (requested_at) WHERE status IN ('preparing', 'requested');

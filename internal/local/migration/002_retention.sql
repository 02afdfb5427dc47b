-- Retention (docs/local-engine.md): the sweeper deletes ended executions
-- and their history oldest first, by stop_ms.
CREATE INDEX local_executions_stop ON local_executions (stop_ms) WHERE stop_ms IS NOT NULL;

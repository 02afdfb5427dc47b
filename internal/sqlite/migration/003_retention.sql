-- Retention (docs/local-engine.md): the sweeper deletes ended executions
-- oldest first, by stop_date.
CREATE INDEX executions_stop_date ON executions (stop_date) WHERE stop_date IS NOT NULL;

-- The local engine's executions: one row each, the runtime state (current
-- state, phase, timers, pending token, retry counters) as JSON in run while
-- RUNNING. Times are Unix milliseconds.
CREATE TABLE local_executions (
    arn      TEXT    PRIMARY KEY,
    machine  TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    state    TEXT    NOT NULL DEFAULT '',
    input    TEXT    NOT NULL,
    output   TEXT,
    error    TEXT    NOT NULL DEFAULT '',
    cause    TEXT    NOT NULL DEFAULT '',
    start_ms INTEGER NOT NULL,
    stop_ms  INTEGER,
    run      TEXT
) STRICT;

-- Restart loads only what is still running.
CREATE INDEX local_executions_running ON local_executions (status) WHERE status = 'RUNNING';

-- Every execution's history, as GetExecutionHistory lists it: one row per
-- execution per commit, holding that commit's events as a JSON array of
-- {"type","state","detail"}; first is the id of the first of them, ts their
-- time. A row per event would cost several times more per transition.
CREATE TABLE local_history (
    arn    TEXT    NOT NULL,
    first  INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    events TEXT    NOT NULL,
    PRIMARY KEY (arn, first)
) STRICT, WITHOUT ROWID;

-- Status-change events not yet accepted by their function (the EventBridge
-- rules); a row is deleted once the function returns without error.
CREATE TABLE local_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    function   TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;

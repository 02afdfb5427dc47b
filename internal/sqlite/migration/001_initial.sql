-- Executions: one row each. Times are Unix milliseconds; JSON documents
-- (input, output, progress, webhook) are stored as text.
CREATE TABLE executions (
    id              TEXT    PRIMARY KEY, -- UUIDv7: sorts by creation time
    tenant          TEXT    NOT NULL,
    arn             TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    input           TEXT,
    output          TEXT,
    error           TEXT    NOT NULL DEFAULT '',
    cause           TEXT    NOT NULL DEFAULT '',
    progress        TEXT,
    callback_url    TEXT    NOT NULL DEFAULT '',
    start_date      INTEGER NOT NULL,
    stop_date       INTEGER,
    webhook         TEXT,
    idempotency_key TEXT    NOT NULL DEFAULT '',
    request_hash    TEXT    NOT NULL DEFAULT ''
) STRICT;

-- ListExecutions: newest first per tenant, with or without a status.
CREATE INDEX executions_tenant_id ON executions (tenant, id DESC);
CREATE INDEX executions_tenant_status_id ON executions (tenant, status, id DESC);

-- The execution an Idempotency-Key last started, per tenant. Deleting the
-- execution frees the key.
CREATE TABLE idempotency_keys (
    tenant       TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    request_hash TEXT    NOT NULL,
    start_date   INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) STRICT;
CREATE INDEX idempotency_keys_execution ON idempotency_keys (execution_id);

CREATE TABLE tenants (
    id      TEXT PRIMARY KEY,
    secrets TEXT NOT NULL -- JSON array, newest first
) STRICT;

CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    tenant   TEXT NOT NULL
) STRICT;

-- Every named queue's messages. seq keeps send order; receipt is the handle
-- of the latest receive only, so an older receipt matches nothing.
CREATE TABLE queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    queue         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT    UNIQUE
) STRICT;
CREATE INDEX queue_messages_ready ON queue_messages (queue, visible_at, seq);

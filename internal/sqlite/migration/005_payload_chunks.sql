-- Payloads stored once per file (issue 12, internal/payload): a large
-- payload is cut into content-defined chunks stored here under an owner
-- (an execution's ARN), keyed by their hash, and the engine's history and
-- executions, the execution records and the task messages store refs to
-- them instead of copies. Each of them holds the owner in payload_holders;
-- the owner's chunks are deleted with its last hold, in the same
-- transaction (payload.Release).
CREATE TABLE payload_chunks (
    owner TEXT NOT NULL,
    hash  BLOB NOT NULL,
    data  BLOB NOT NULL,
    PRIMARY KEY (owner, hash)
) STRICT;

CREATE TABLE payload_holders (
    owner  TEXT NOT NULL,
    holder TEXT NOT NULL, -- 'engine', 'record:' and an execution id, 'message:' and a message id
    PRIMARY KEY (owner, holder)
) STRICT, WITHOUT ROWID;

-- The owner of the chunks a message's body refers to (the body is then a
-- ref); NULL for a body stored as it is.
ALTER TABLE queue_messages ADD COLUMN owner TEXT;

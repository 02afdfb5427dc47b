-- Payloads written once (docs/local-engine.md, Payloads): a payload larger
-- than a few KiB is cut into content-defined chunks stored here once per
-- execution, keyed by their hash; history events, the execution's input and
-- output and its run record refer to the chunks instead of copying them.
-- Retention deletes an execution's chunks with it.
CREATE TABLE local_blobs (
    arn  TEXT NOT NULL,
    hash BLOB NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (arn, hash)
) STRICT;

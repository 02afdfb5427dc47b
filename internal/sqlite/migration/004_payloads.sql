-- Large inputs and outputs of executions in a table of their own (issue 12):
-- SQLite rewrites a whole row on every UPDATE, so a 64 KiB input in the
-- executions row was written again by each progress report, the finish and
-- every webhook attempt. A payload larger than 2 KiB is now written here
-- once (the row's column is NULL); small ones stay inline. Deleting the
-- execution deletes them.
CREATE TABLE execution_payloads (
    id   TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL, -- 'input' or 'output'
    data TEXT NOT NULL,
    PRIMARY KEY (id, kind)
) STRICT;

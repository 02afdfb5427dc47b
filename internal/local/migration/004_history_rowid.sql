-- The history as a rowid table (issue 12): rows are appended at the end of
-- the table instead of into the middle of a WITHOUT ROWID tree ordered by
-- ARN, where each commit dirtied a leaf page per execution and rows of a
-- few KiB were a poor fit; the (arn, first) index keeps the order
-- GetExecutionHistory reads in. Same columns, same rows.
CREATE TABLE local_history_rowid (
    id     INTEGER PRIMARY KEY,
    arn    TEXT    NOT NULL,
    first  INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    events TEXT    NOT NULL
) STRICT;
INSERT INTO local_history_rowid (arn, first, ts, events) SELECT arn, first, ts, events FROM local_history ORDER BY arn, first;
DROP TABLE local_history;
ALTER TABLE local_history_rowid RENAME TO local_history;
CREATE UNIQUE INDEX local_history_arn_first ON local_history (arn, first);

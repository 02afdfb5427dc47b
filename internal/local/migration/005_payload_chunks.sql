-- The engine's payload chunks move to payload_chunks (internal/sqlite
-- migration 005), shared with the execution records and the task messages
-- of the same file: each execution that has chunks is held by the engine.
INSERT OR IGNORE INTO payload_chunks (owner, hash, data) SELECT arn, hash, data FROM local_blobs;
INSERT OR IGNORE INTO payload_holders (owner, holder) SELECT DISTINCT arn, 'engine' FROM local_blobs;
DROP TABLE local_blobs;

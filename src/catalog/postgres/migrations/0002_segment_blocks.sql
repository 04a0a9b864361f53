-- Segments packed per stream and minute of their end, as the embedded
-- engine keeps them: a block holds the segments of one stream ending in
-- one minute, encoded at ~20 bytes each (src/catalog/blocks/codec.rs),
-- where a row per segment cost ~500 bytes with its keys and indexes.
-- The rows of version 1 are packed into blocks by the binary (see
-- migrations.rs) between this script and 0002_drop_rows.sql.

ALTER TABLE segment_keys RENAME TO segment_keys_v1;
ALTER INDEX segment_keys_by_start RENAME TO segment_keys_v1_by_start;

-- minute_us is the first instant of the minute the block's segments end
-- in; last_start_us the latest start among them, so a block whose every
-- segment expired is found by index; segments how many it holds, so
-- counts never decode a block.
CREATE TABLE segment_blocks (
    stream_id bigint NOT NULL,
    minute_us bigint NOT NULL,
    last_start_us bigint NOT NULL,
    segments integer NOT NULL,
    block bytea NOT NULL,
    PRIMARY KEY (stream_id, minute_us)
) PARTITION BY RANGE (minute_us);
CREATE INDEX segment_blocks_by_last_start ON segment_blocks (last_start_us);
CREATE TABLE segment_blocks_default PARTITION OF segment_blocks DEFAULT;

-- The duplicate index: for each object of a stream (the 64-bit hash of
-- its bucket and key), the minute of the block holding it. A hash only
-- says which blocks to read; the blocks decide. Registration writes it
-- in minute order, so a BRIN index finds a week's entries for the drop
-- of that week's partition at almost no cost in bytes.
CREATE TABLE segment_keys (
    stream_id bigint NOT NULL,
    hash bigint NOT NULL,
    minute_us bigint NOT NULL
);
CREATE INDEX segment_keys_by_hash ON segment_keys (stream_id, hash);
CREATE INDEX segment_keys_by_minute ON segment_keys USING brin (minute_us);

-- The catalog's first schema. Times are microseconds since the Unix epoch
-- (bigint), as the service counts them; bucket and object keys compare
-- bytewise (COLLATE "C") because scans page by (end, bucket, object) in
-- the service's own byte order.

CREATE TABLE streams (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain text NOT NULL,
    app text NOT NULL,
    stream text NOT NULL,
    longest_segment bigint NOT NULL DEFAULT 0,
    UNIQUE (domain, app, stream)
);

-- One row per stored segment, keyed by what makes a segment a duplicate.
-- The segments table is partitioned by end time and so cannot hold a
-- unique key without its end: this table is that key, and the sweeper's
-- index by start (segments expire 90 days after their start).
CREATE TABLE segment_keys (
    stream_id bigint NOT NULL,
    bucket text COLLATE "C" NOT NULL,
    object text COLLATE "C" NOT NULL,
    start_us bigint NOT NULL,
    end_us bigint NOT NULL,
    PRIMARY KEY (stream_id, bucket, object)
);
CREATE INDEX segment_keys_by_start ON segment_keys (start_us);

-- Range partitions by end are created ahead by the engine; the default
-- partition takes ends outside them (imports of old recordings, clocks
-- far off).
CREATE TABLE segments (
    stream_id bigint NOT NULL,
    end_us bigint NOT NULL,
    bucket text COLLATE "C" NOT NULL,
    object text COLLATE "C" NOT NULL,
    start_us bigint NOT NULL,
    duration_us bigint NOT NULL,
    endpoint text NOT NULL,
    sequence bigint NOT NULL,
    width bigint NOT NULL,
    height bigint NOT NULL,
    format smallint NOT NULL,
    size bigint NOT NULL,
    codec smallint,
    first_pts bigint,
    PRIMARY KEY (stream_id, end_us, bucket, object)
) PARTITION BY RANGE (end_us);
CREATE TABLE segments_default PARTITION OF segments DEFAULT;

-- The record itself is kept prost-encoded, as every engine keeps it; the
-- columns are what the queries select and order by.
CREATE TABLE manifests (
    record_id bytea PRIMARY KEY,
    stream_id bigint NOT NULL,
    created bigint NOT NULL,
    expires bigint NOT NULL,
    endpoint text NOT NULL,
    bucket text NOT NULL,
    object text NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX manifests_by_stream ON manifests (stream_id, created, record_id);
CREATE INDEX manifests_by_expiry ON manifests (expires);
CREATE INDEX manifests_by_playlist ON manifests (endpoint, bucket, object);

CREATE TABLE tokens (
    key bytea PRIMARY KEY,
    created bigint NOT NULL,
    fingerprint bytea NOT NULL,
    response bytea NOT NULL
);
CREATE INDEX tokens_by_created ON tokens (created);

-- Record counts for metrics without a scan. Writers add to one of several
-- slots, picked at random, so concurrent commits rarely wait on one row.
CREATE TABLE record_counts (
    slot smallint PRIMARY KEY,
    segments bigint NOT NULL DEFAULT 0,
    manifests bigint NOT NULL DEFAULT 0
);
INSERT INTO record_counts (slot) SELECT generate_series(0, 15);

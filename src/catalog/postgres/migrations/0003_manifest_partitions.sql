-- Manifests partitioned by week of their expiry, so the sweep drops a
-- week of expired manifests whole. A partitioned table's unique key holds
-- its partition column: the key is (record_id, expires), and a record id
-- is a random UUID. The binary creates the weeks ahead, then
-- 0003_copy_manifests.sql moves the rows in.

ALTER TABLE manifests RENAME TO manifests_v2;
ALTER INDEX manifests_pkey RENAME TO manifests_v2_pkey;
ALTER INDEX manifests_by_stream RENAME TO manifests_v2_by_stream;
ALTER INDEX manifests_by_expiry RENAME TO manifests_v2_by_expiry;
ALTER INDEX manifests_by_playlist RENAME TO manifests_v2_by_playlist;

CREATE TABLE manifests (
    record_id bytea NOT NULL,
    stream_id bigint NOT NULL,
    created bigint NOT NULL,
    expires bigint NOT NULL,
    endpoint text NOT NULL,
    bucket text NOT NULL,
    object text NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (record_id, expires)
) PARTITION BY RANGE (expires);
CREATE INDEX manifests_by_stream ON manifests (stream_id, created, record_id);
CREATE INDEX manifests_by_expiry ON manifests (expires);
CREATE INDEX manifests_by_playlist ON manifests (endpoint, bucket, object);
CREATE TABLE manifests_default PARTITION OF manifests DEFAULT;

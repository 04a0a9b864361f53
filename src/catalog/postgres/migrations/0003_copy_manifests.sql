-- Version 2's manifests into their weekly partitions.
INSERT INTO manifests
    (record_id, stream_id, created, expires, endpoint, bucket, object, record)
SELECT record_id, stream_id, created, expires, endpoint, bucket, object, record
FROM manifests_v2;
DROP TABLE manifests_v2;

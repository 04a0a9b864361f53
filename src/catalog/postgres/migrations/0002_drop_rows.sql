-- Version 1's rows, now packed into segment_blocks.
DROP TABLE segments;
DROP TABLE segment_keys_v1;

#!/usr/bin/env python3
"""Writes the seeds of the playlist fuzz target into seeds/playlist/.

The target reads its input with the `arbitrary` crate: a Header, then each
Record preceded by an odd byte. Integers are little-endian, a bool is one
byte (odd is true). The field order is that of the structs in
fuzz_targets/playlist.rs.

    python3 seeds/make_playlist_seeds.py   # from fuzz/
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "playlist")

ABSOLUTE, RAW_DURATION, PROBED, H265, CLIP, OTHER_BUCKET = 1, 2, 4, 8, 16, 32
FLV, MP4 = 1 << 6, 2 << 6
SECOND = 1_000_000
T0 = 1_800_000_000 * SECOND  # 2027-01-15T08:00:00Z
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


def header(range_offset_ms=0, range_ms=60_000, included=False, cap=100,
           span_gap=500_000, huge_gap=False):
    return struct.pack("<iI?BI?", range_offset_ms, range_ms, included, cap,
                       span_gap, huge_gap)


def record(flags=0, start=0, duration=6 * SECOND, sequence=0, width=640,
           height=360, first_pts=0, trim_in=0, trim_out=0, range_length=0,
           range_offset=0):
    """`start` is microseconds after the previous end unless ABSOLUTE;
    `duration` a u32 of microseconds unless RAW_DURATION."""
    if not flags & ABSOLUTE:
        start &= 0xFFFFFFFF
        start = start - (1 << 32) if start >= 1 << 31 else start
    return b"\x01" + struct.pack(
        "<BqqqHHQHHII", flags, start, duration, sequence, width, height,
        first_pts & ((1 << 64) - 1), trim_in, trim_out, range_length,
        range_offset)


def pts(seconds):
    return int(seconds * 90_000) % (1 << 33)


SEEDS = {
    # Three back-to-back 6 s segments: no discontinuity, one date.
    "continuous": header() + b"".join(
        record(ABSOLUTE if i == 0 else 0, T0 if i == 0 else 0, sequence=7 + i)
        for i in range(3)),
    # A hole of 0.5 s (no break) and one of 0.500001 s (a break).
    "holes": header(range_ms=120_000) + record(ABSOLUTE, T0)
    + record(0, 500_000) + record(0, 500_001),
    # A resolution change behind a segment of unknown size.
    "resolution": header() + record(ABSOLUTE, T0)
    + record(width=0, height=0) + record(width=1280, height=720),
    # PTS across the 33-bit wrap, an encoder restart, a codec change.
    "media": header() + record(ABSOLUTE | PROBED, T0, first_pts=pts(-1))
    + record(PROBED, first_pts=pts(5)) + record(PROBED, first_pts=0)
    + record(PROBED | H265, first_pts=pts(6)),
    # KEYFRAME clip parts with byte ranges at both ends: version 4.
    "clip": header(range_offset_ms=2_000, range_ms=10_000, included=True)
    + record(ABSOLUTE | CLIP, T0, trim_in=2_000, range_length=1_000,
             range_offset=376)
    + record(CLIP, trim_out=3_000, range_length=2_256),
    # Rounding: 6.0005 s prints 6.001 and makes the target 7.
    "rounding": header() + record(ABSOLUTE, T0, duration=6_000_500)
    + record(duration=999) + record(duration=0),
    # Selection errors: a non-TS segment and a second bucket in range.
    "selection-errors": header(cap=1) + record(ABSOLUTE, T0)
    + record(FLV) + record(OTHER_BUCKET) + record(MP4 | OTHER_BUCKET),
    # Segments out of order and overlapping, selected with EndTimeIncluded.
    "unsorted": header(range_offset_ms=-3_000, range_ms=9_000, included=True)
    + record(ABSOLUTE, T0 + 12 * SECOND) + record(ABSOLUTE, T0)
    + record(ABSOLUTE, T0 + 3 * SECOND),
    # Extremes: i64 bounds for starts, durations and sequences.
    "extremes": header(range_offset_ms=-(1 << 31), range_ms=(1 << 32) - 1,
                       huge_gap=True)
    + record(ABSOLUTE | RAW_DURATION, I64_MIN, I64_MAX, sequence=I64_MIN)
    + record(ABSOLUTE | RAW_DURATION, I64_MAX, I64_MAX)
    + record(ABSOLUTE | RAW_DURATION | PROBED, 0, I64_MIN,
             first_pts=(1 << 64) - 1),
    "empty": header(),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Uses record-index the way another team's Python service would: through
stubs that grpcio-tools generated from the public .proto, with errors read
from the standard google.rpc details.

Prints one `ok - ...` line per check and exits non-zero on the first failed
check, so the Rust test that runs it can show exactly what broke.

usage: client_check.py --address HOST:PORT --stubs DIR --objects-dir DIR
"""

import argparse
import datetime
import os
import sys
import urllib.parse
import uuid

DOMAIN = "example.com"
APP = "py"
STREAM = "cam"
BUCKET = "py-bucket"
SEGMENT_SECONDS = 6.0
SEGMENTS = 5


class CheckFailed(Exception):
    pass


def check(condition, what, detail=""):
    if not condition:
        raise CheckFailed(f"not ok - {what}" + (f": {detail}" if detail else ""))
    print(f"ok - {what}", flush=True)


def utc_seconds(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_millis(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def metadata_value(metadata, key):
    for item in metadata or ():
        if item.key == key:
            return item.value
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--stubs", required=True, help="directory of the generated modules")
    parser.add_argument("--objects-dir", required=True, help="where the local store keeps objects")
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from google.rpc import error_details_pb2, status_pb2
    from recordindex.v1 import record_index_pb2 as pb
    from recordindex.v1 import record_index_pb2_grpc as pb_grpc

    with grpc.insecure_channel(args.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.RecordIndexStub(channel)

        # A recording that ended half an hour ago, in the local store's
        # endpoint; indexing never reads the media itself.
        start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(minutes=30)
        segments = [
            pb.Segment(
                oss_endpoint="localhost",
                oss_bucket=BUCKET,
                oss_object=f"live/{APP}/{STREAM}/seg{i:03d}.ts",
                start_time=utc_millis(start + datetime.timedelta(seconds=SEGMENT_SECONDS * i)),
                duration=SEGMENT_SECONDS,
                sequence=i,
                width=1280,
                height=720,
                format="ts",
                size=100_000 + i,
            )
            for i in range(SEGMENTS)
        ]
        reply, call = stub.RegisterLiveStreamRecordSegments.with_call(
            pb.RegisterLiveStreamRecordSegmentsRequest(
                domain_name=DOMAIN, app_name=APP, stream_name=STREAM, segments=segments
            ),
            timeout=30,
        )
        check(reply.accepted == SEGMENTS and reply.duplicates == 0, "Register accepts every new segment", str(reply))
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "Register's x-request-id matches its RequestId",
        )

        end = start + datetime.timedelta(seconds=SEGMENT_SECONDS * SEGMENTS)
        reply, call = stub.CreateLiveStreamRecordIndexFiles.with_call(
            pb.CreateLiveStreamRecordIndexFilesRequest(
                domain_name=DOMAIN,
                app_name=APP,
                stream_name=STREAM,
                oss_endpoint="localhost",
                oss_bucket=BUCKET,
                oss_object="record/{StreamName}/{RecordId}.m3u8",
                start_time=utc_seconds(start),
                end_time=utc_seconds(end),
            ),
            timeout=30,
        )
        info = reply.record_info
        try:
            record_id = uuid.UUID(info.record_id)
        except ValueError:
            record_id = None
        check(record_id is not None, "RecordId is a UUID", repr(info.record_id))
        check(
            info.oss_object == f"record/{STREAM}/{info.record_id}.m3u8",
            "OssObject is the expanded template",
            repr(info.oss_object),
        )
        expected_path = os.path.join(os.path.realpath(args.objects_dir), BUCKET, info.oss_object)
        url = urllib.parse.urlparse(info.record_url)
        url_path = os.path.realpath(urllib.parse.unquote(url.path)) if url.scheme == "file" else None
        check(url_path == expected_path, "RecordUrl is the file:// URL of the playlist", repr(info.record_url))
        check(
            info.start_time == utc_seconds(start) and info.end_time == utc_seconds(end),
            "StartTime and EndTime echo the request",
        )
        check(abs(info.duration - SEGMENT_SECONDS * SEGMENTS) < 1e-6, "Duration covers the five segments", str(info.duration))
        check((info.width, info.height) == (1280, 720), "Width and Height come from the segments")
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "Create's x-request-id matches its RequestId",
        )
        with open(expected_path, encoding="utf-8") as playlist_file:
            playlist = playlist_file.read()
        lines = playlist.splitlines()
        check(lines[:1] == ["#EXTM3U"] and lines[-1:] == ["#EXT-X-ENDLIST"], "the playlist file is a complete M3U8", playlist)
        check(sum(line.startswith("#EXTINF:") for line in lines) == SEGMENTS, "the playlist lists the five segments", playlist)

        try:
            stub.CreateLiveStreamRecordIndexFiles(
                pb.CreateLiveStreamRecordIndexFilesRequest(
                    domain_name=DOMAIN,
                    app_name=APP,
                    stream_name=STREAM,
                    oss_endpoint="localhost",
                    oss_bucket=BUCKET,
                    oss_object="record/{StreamName}.m3u8",
                    start_time="yesterday",
                    end_time=utc_seconds(end),
                ),
                timeout=30,
            )
            check(False, "a malformed StartTime is rejected")
        except grpc.RpcError as error:
            check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "a malformed StartTime is INVALID_ARGUMENT", str(error.code()))
            check(
                error.details().startswith("InvalidStartTime.Malformed"),
                "the message starts with InvalidStartTime.Malformed",
                repr(error.details()),
            )
            request_id = metadata_value(error.initial_metadata(), "x-request-id") or metadata_value(
                error.trailing_metadata(), "x-request-id"
            )
            check(request_id is not None and request_id == request_id.upper(), "the error carries an upper-case x-request-id", repr(request_id))
            details_bin = metadata_value(error.trailing_metadata(), "grpc-status-details-bin")
            check(details_bin is not None, "the error carries grpc-status-details-bin")
            status = status_pb2.Status.FromString(details_bin)
            check(status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], "google.rpc.Status has the same code", str(status.code))
            infos = []
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    error_info = error_details_pb2.ErrorInfo()
                    detail.Unpack(error_info)
                    infos.append(error_info)
            check(len(infos) == 1, "the details hold one google.rpc.ErrorInfo", str(status))
            error_info = infos[0]
            check(error_info.reason == "InvalidStartTime.Malformed", "ErrorInfo.reason is the error code", error_info.reason)
            check(error_info.domain == "recordindex", "ErrorInfo.domain is recordindex", error_info.domain)
            check(error_info.metadata.get("RequestId") == request_id, "ErrorInfo RequestId matches x-request-id", str(error_info.metadata))
            check(error_info.metadata.get("HttpStatus") == "400", "ErrorInfo HttpStatus is 400", str(error_info.metadata))

    print("all checks passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(failure, flush=True)
        sys.exit(1)

#!/usr/bin/env python3
"""Uses record-index the way another team's Python service would: through
stubs that grpcio-tools generated from the public .proto, with errors read
from the standard google.rpc details.

Every RPC of recordindex.v1.RecordIndex is driven once the way a user does
it and once into a documented error; grpc.health.v1.Health/Check is called
through stubs generated from the standard health proto.

Prints one `ok - ...` line per check and exits non-zero on the first failed
check, so the Rust test that runs it can show exactly what broke.

usage: client_check.py --address HOST:PORT --stubs DIR --objects-dir DIR
"""

import argparse
import datetime
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

DOMAIN = "example.com"
APP = "py"
STREAM = "cam"
BUCKET = "py-bucket"
SEGMENT_SECONDS = 6.0
SEGMENTS = 5
SERVICE_NAME = "recordindex.v1.RecordIndex"
# How long the server may take to pass its first readiness check.
HEALTH_DEADLINE_SECONDS = 10.0

# grpc/health/v1/health.proto as the gRPC project publishes it. grpcio-tools
# bundles only the protobuf well-known types, so the client compiles this
# itself, as a user without grpcio-health-checking would. The file lives in
# `grpc_health/v1/` (the layout of grpcio-health-checking) so the generated
# package does not shadow the `grpc` module; the proto package, which names
# the service on the wire, stays grpc.health.v1.
HEALTH_PROTO = """\
syntax = "proto3";

package grpc.health.v1;

message HealthCheckRequest {
  string service = 1;
}

message HealthCheckResponse {
  enum ServingStatus {
    UNKNOWN = 0;
    SERVING = 1;
    NOT_SERVING = 2;
    SERVICE_UNKNOWN = 3;
  }
  ServingStatus status = 1;
}

service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
"""


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


def generate_health_stubs(stubs_dir):
    """Compiles the standard health proto next to the service's stubs."""
    from grpc_tools import protoc

    proto_root = os.path.join(stubs_dir, "health-proto")
    proto_dir = os.path.join(proto_root, "grpc_health", "v1")
    os.makedirs(proto_dir, exist_ok=True)
    with open(os.path.join(proto_dir, "health.proto"), "w", encoding="utf-8") as proto_file:
        proto_file.write(HEALTH_PROTO)
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"--python_out={stubs_dir}",
            f"--grpc_python_out={stubs_dir}",
            "grpc_health/v1/health.proto",
        ]
    )
    if status != 0:
        raise CheckFailed(f"not ok - grpc_tools.protoc compiles the health proto: exit status {status}")


class Client:
    """The generated stubs plus the error reading every check shares."""

    def __init__(self, grpc, status_pb2, error_details_pb2):
        self.grpc = grpc
        self.status_pb2 = status_pb2
        self.error_details_pb2 = error_details_pb2

    def rejected(self, call, request, what):
        """Sends a request that must fail and returns its grpc.RpcError."""
        try:
            reply = call(request, timeout=30)
        except self.grpc.RpcError as error:
            return error
        check(False, f"{what} is rejected", f"it succeeded with {reply}")

    def error_info(self, error):
        """The google.rpc.Status and its ErrorInfo details of an error."""
        details_bin = metadata_value(error.trailing_metadata(), "grpc-status-details-bin")
        if details_bin is None:
            return None, []
        status = self.status_pb2.Status.FromString(details_bin)
        infos = []
        for detail in status.details:
            if detail.Is(self.error_details_pb2.ErrorInfo.DESCRIPTOR):
                error_info = self.error_details_pb2.ErrorInfo()
                detail.Unpack(error_info)
                infos.append(error_info)
        return status, infos

    def expect_error(self, call, request, what, grpc_code, error_code):
        """One documented error the way a client matches on it: the gRPC
        code, the message starting with the code, and ErrorInfo.reason being
        the code verbatim, with the request id of the response metadata."""
        error = self.rejected(call, request, what)
        check(error.code() == grpc_code, f"{what} is {grpc_code.name}", f"{error.code()}: {error.details()}")
        check(
            error.details().startswith(f"{error_code}: ") or error.details() == error_code,
            f"{what}: the message starts with {error_code}",
            repr(error.details()),
        )
        status, infos = self.error_info(error)
        check(
            status is not None and status.code == grpc_code.value[0] and len(infos) == 1,
            f"{what}: grpc-status-details-bin holds the status and one ErrorInfo",
            str(status),
        )
        error_info = infos[0]
        check(error_info.reason == error_code, f"{what}: ErrorInfo.reason is {error_code}", repr(error_info.reason))
        request_id = metadata_value(error.initial_metadata(), "x-request-id") or metadata_value(
            error.trailing_metadata(), "x-request-id"
        )
        check(
            request_id is not None and error_info.metadata.get("RequestId") == request_id,
            f"{what}: ErrorInfo RequestId matches x-request-id",
            f"{request_id!r} vs {dict(error_info.metadata)}",
        )
        return error_info


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--stubs", required=True, help="directory of the generated modules")
    parser.add_argument("--objects-dir", required=True, help="where the local store keeps objects")
    args = parser.parse_args()

    generate_health_stubs(args.stubs)
    sys.path.insert(0, args.stubs)
    import grpc
    from google.rpc import error_details_pb2, status_pb2
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from recordindex.v1 import record_index_pb2 as pb
    from recordindex.v1 import record_index_pb2_grpc as pb_grpc

    client = Client(grpc, status_pb2, error_details_pb2)
    objects_dir = os.path.realpath(args.objects_dir)

    def playlist_path(info):
        return os.path.join(objects_dir, info.oss_bucket, info.oss_object)

    with grpc.insecure_channel(args.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.RecordIndexStub(channel)

        # ---- grpc.health.v1: NOT_SERVING until the first readiness check.
        health = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        deadline = time.monotonic() + HEALTH_DEADLINE_SECONDS
        while True:
            answer = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
            if answer.status == serving or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(
            answer.status == serving,
            f"Health/Check reports {SERVICE_NAME} SERVING",
            health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status),
        )
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        check(
            answer.status == serving,
            "Health/Check reports the server SERVING",
            health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status),
        )

        # ---- RegisterLiveStreamRecordSegments. A recording that ended half
        # an hour ago, in the local store's endpoint; indexing never reads
        # the media itself.
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
        register = pb.RegisterLiveStreamRecordSegmentsRequest(
            domain_name=DOMAIN, app_name=APP, stream_name=STREAM, segments=segments
        )
        reply, call = stub.RegisterLiveStreamRecordSegments.with_call(register, timeout=30)
        check(reply.accepted == SEGMENTS and reply.duplicates == 0, "Register accepts every new segment", str(reply))
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "Register's x-request-id matches its RequestId",
        )
        reply = stub.RegisterLiveStreamRecordSegments(register, timeout=30)
        check(
            reply.accepted == 0 and reply.duplicates == SEGMENTS,
            "Register again counts every segment as a duplicate",
            str(reply),
        )

        # ---- CreateLiveStreamRecordIndexFiles.
        end = start + datetime.timedelta(seconds=SEGMENT_SECONDS * SEGMENTS)
        listed_from = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(minutes=1)

        def create_request(range_end):
            return pb.CreateLiveStreamRecordIndexFilesRequest(
                domain_name=DOMAIN,
                app_name=APP,
                stream_name=STREAM,
                oss_endpoint="localhost",
                oss_bucket=BUCKET,
                oss_object="record/{StreamName}/{RecordId}.m3u8",
                start_time=utc_seconds(start),
                end_time=utc_seconds(range_end),
            )

        reply, call = stub.CreateLiveStreamRecordIndexFiles.with_call(create_request(end), timeout=30)
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
        expected_path = playlist_path(info)
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
            (info.domain_name, info.app_name, info.stream_name, info.oss_endpoint, info.oss_bucket)
            == (DOMAIN, APP, STREAM, "localhost", BUCKET),
            "RecordInfo names the stream and the playlist's bucket",
            str(info),
        )
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "Create's x-request-id matches its RequestId",
        )
        with open(expected_path, encoding="utf-8") as playlist_file:
            playlist = playlist_file.read()
        lines = playlist.splitlines()
        check(lines[:1] == ["#EXTM3U"] and lines[-1:] == ["#EXT-X-ENDLIST"], "the playlist file is a complete M3U8", playlist)
        check(sum(line.startswith("#EXTINF:") for line in lines) == SEGMENTS, "the playlist lists the five segments", playlist)

        # A second manifest, of the first three segments, for the listing
        # and for Delete.
        second = stub.CreateLiveStreamRecordIndexFiles(
            create_request(start + datetime.timedelta(seconds=SEGMENT_SECONDS * 3)), timeout=30
        ).record_info
        check(
            second.record_id != info.record_id and abs(second.duration - SEGMENT_SECONDS * 3) < 1e-6,
            "a second Create writes another manifest of three segments",
            str(second),
        )
        check(os.path.isfile(playlist_path(second)), "the second playlist file exists", playlist_path(second))

        error = client.rejected(
            stub.CreateLiveStreamRecordIndexFiles,
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
            "a malformed StartTime",
        )
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
        status, infos = client.error_info(error)
        check(status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], "google.rpc.Status has the same code", str(status.code))
        check(len(infos) == 1, "the details hold one google.rpc.ErrorInfo", str(status))
        error_info = infos[0]
        check(error_info.reason == "InvalidStartTime.Malformed", "ErrorInfo.reason is the error code", error_info.reason)
        check(error_info.domain == "recordindex", "ErrorInfo.domain is recordindex", error_info.domain)
        check(error_info.metadata.get("RequestId") == request_id, "ErrorInfo RequestId matches x-request-id", str(error_info.metadata))
        check(error_info.metadata.get("HttpStatus") == "400", "ErrorInfo HttpStatus is 400", str(error_info.metadata))

        # ---- RegisterLiveStreamRecordSegments error: a required name left
        # empty (rule 1), and nothing of the batch is stored.
        client.expect_error(
            stub.RegisterLiveStreamRecordSegments,
            pb.RegisterLiveStreamRecordSegmentsRequest(
                domain_name=DOMAIN, app_name=APP, stream_name="", segments=segments
            ),
            "Register without StreamName",
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidParams",
        )

        # ---- DescribeLiveStreamRecordIndexFile.
        def describe_file(record_id):
            return pb.DescribeLiveStreamRecordIndexFileRequest(
                domain_name=DOMAIN, app_name=APP, stream_name=STREAM, record_id=record_id
            )

        reply, call = stub.DescribeLiveStreamRecordIndexFile.with_call(describe_file(info.record_id), timeout=30)
        check(
            reply.record_index_info == info,
            "DescribeFile returns the RecordInfo Create gave",
            f"{reply.record_index_info} vs {info}",
        )
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "DescribeFile's x-request-id matches its RequestId",
        )
        error_info = client.expect_error(
            stub.DescribeLiveStreamRecordIndexFile,
            describe_file(str(uuid.uuid4())),
            "DescribeFile of an unknown RecordId",
            grpc.StatusCode.NOT_FOUND,
            "InvalidRecordId.NotFound",
        )
        check(
            error_info.metadata.get("HttpStatus") == "404",
            "DescribeFile of an unknown RecordId: ErrorInfo HttpStatus is 404",
            str(error_info.metadata),
        )

        # ---- DescribeLiveStreamRecordIndexFiles: manifests by creation time.
        listed_until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)

        def describe_files(page_num, order, end_time=None):
            return pb.DescribeLiveStreamRecordIndexFilesRequest(
                domain_name=DOMAIN,
                app_name=APP,
                stream_name=STREAM,
                start_time=utc_seconds(listed_from),
                end_time=end_time if end_time is not None else utc_seconds(listed_until),
                page_num=page_num,
                page_size=5,
                order=order,
            )

        reply, call = stub.DescribeLiveStreamRecordIndexFiles.with_call(describe_files(1, "asc"), timeout=30)
        check(
            list(reply.record_index_info_list) == [info, second],
            "DescribeFiles lists both manifests oldest first, as Create gave them",
            str(reply),
        )
        check(
            (reply.page_num, reply.page_size, reply.order, reply.total_num, reply.total_page) == (1, 5, "asc", 2, 1),
            "DescribeFiles reports the page, its size, the order and the totals",
            str(reply),
        )
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "DescribeFiles' x-request-id matches its RequestId",
        )
        reply = stub.DescribeLiveStreamRecordIndexFiles(describe_files(1, "desc"), timeout=30)
        check(
            list(reply.record_index_info_list) == [second, info] and reply.order == "desc",
            "DescribeFiles with Order desc lists the newest first",
            str(reply),
        )
        reply = stub.DescribeLiveStreamRecordIndexFiles(describe_files(2, "asc"), timeout=30)
        check(
            len(reply.record_index_info_list) == 0 and reply.page_num == 2 and reply.total_num == 2,
            "DescribeFiles' page after the last is empty",
            str(reply),
        )
        client.expect_error(
            stub.DescribeLiveStreamRecordIndexFiles,
            describe_files(1, "asc", end_time="tomorrow"),
            "DescribeFiles with a malformed EndTime",
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidEndTime.Malformed",
        )

        # ---- DescribeLiveStreamRecordContent: one continuous span.
        def describe_content(range_start, range_end):
            return pb.DescribeLiveStreamRecordContentRequest(
                domain_name=DOMAIN,
                app_name=APP,
                stream_name=STREAM,
                start_time=utc_seconds(range_start),
                end_time=utc_seconds(range_end),
            )

        reply, call = stub.DescribeLiveStreamRecordContent.with_call(
            describe_content(start - datetime.timedelta(minutes=1), end + datetime.timedelta(minutes=1)), timeout=30
        )
        spans = list(reply.record_content_info_list)
        check(len(spans) == 1, "Content finds one continuous recording", str(reply))
        span = spans[0]
        check(
            span.start_time == utc_seconds(start) and span.end_time == utc_seconds(end),
            "Content's span runs from the first segment's start to the last one's end",
            str(span),
        )
        check(abs(span.duration - SEGMENT_SECONDS * SEGMENTS) < 1e-6, "Content's span lasts the five segments", str(span))
        check(
            (span.oss_endpoint, span.oss_bucket, span.oss_object_prefix) == ("localhost", BUCKET, f"live/{APP}/{STREAM}/"),
            "Content's span names the segments' endpoint, bucket and key prefix",
            str(span),
        )
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "Content's x-request-id matches its RequestId",
        )
        client.expect_error(
            stub.DescribeLiveStreamRecordContent,
            describe_content(end, start),
            "Content with StartTime after EndTime",
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidEndTime.Mismatch",
        )

        # ---- SignPlaybackUrl: in local mode the listener asks for no
        # signature, so the URL comes back unsigned, on the listener's own
        # address, and the listener answers it with the range's playlist.
        def sign_request(clip_mode=""):
            return pb.SignPlaybackUrlRequest(
                domain_name=DOMAIN,
                app_name=APP,
                stream_name=STREAM,
                start_time=utc_seconds(start),
                end_time=utc_seconds(end),
                clip_mode=clip_mode,
            )

        reply, call = stub.SignPlaybackUrl.with_call(sign_request(), timeout=30)
        index_path = f"/v1/{DOMAIN}/{APP}/{STREAM}/index.m3u8?start={utc_seconds(start)}&end={utc_seconds(end)}"
        check(
            reply.playback_path == index_path and reply.expire_time == "",
            "SignPlaybackUrl names the range's index.m3u8, unsigned in local mode",
            str(reply),
        )
        check(
            reply.playback_url.startswith("http://127.0.0.1:") and reply.playback_url.endswith(index_path),
            "SignPlaybackUrl's PlaybackUrl is on the playback listener",
            reply.playback_url,
        )
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "SignPlaybackUrl's x-request-id matches its RequestId",
        )
        # Straight to the listener, whatever proxy the environment names.
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(reply.playback_url, timeout=30) as answer:
            content_type = answer.headers.get("Content-Type")
            fetched = answer.read().decode("utf-8")
        check(
            content_type == "application/vnd.apple.mpegurl"
            and sum(line.startswith("#EXTINF:") for line in fetched.splitlines()) == SEGMENTS,
            "the playback listener answers the signed URL with the five segments",
            f"{content_type}: {fetched}",
        )
        client.expect_error(
            stub.SignPlaybackUrl,
            sign_request(clip_mode="FAST"),
            "SignPlaybackUrl with ClipMode FAST",
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidParams",
        )

        # ---- DeleteLiveStreamRecordIndexFiles: the second manifest and its
        # playlist go; an unknown id is reported, not an error.
        unknown_id = str(uuid.uuid4())
        reply, call = stub.DeleteLiveStreamRecordIndexFiles.with_call(
            pb.DeleteLiveStreamRecordIndexFilesRequest(
                domain_name=DOMAIN,
                app_name=APP,
                stream_name=STREAM,
                record_id=[second.record_id, unknown_id],
                remove_file=True,
            ),
            timeout=30,
        )
        outcomes = [(item.record_id, item.message) for item in reply.record_delete_info_list]
        check(
            (reply.code, reply.message) == ("OK", "OK") and outcomes == [(second.record_id, "OK"), (unknown_id, "FileNotFound")],
            "Delete removes the manifest and reports the unknown id FileNotFound",
            str(reply),
        )
        check(
            metadata_value(call.initial_metadata(), "x-request-id") == reply.request_id,
            "Delete's x-request-id matches its RequestId",
        )
        check(not os.path.exists(playlist_path(second)), "Delete with RemoveFile removes the playlist file", playlist_path(second))
        check(os.path.isfile(expected_path), "the other manifest's playlist file stays", expected_path)
        client.expect_error(
            stub.DescribeLiveStreamRecordIndexFile,
            describe_file(second.record_id),
            "DescribeFile of a deleted manifest",
            grpc.StatusCode.NOT_FOUND,
            "InvalidRecordId.NotFound",
        )
        reply = stub.DescribeLiveStreamRecordIndexFiles(describe_files(1, "asc"), timeout=30)
        check(
            list(reply.record_index_info_list) == [info] and reply.total_num == 1,
            "DescribeFiles no longer lists the deleted manifest",
            str(reply),
        )
        client.expect_error(
            stub.DeleteLiveStreamRecordIndexFiles,
            pb.DeleteLiveStreamRecordIndexFilesRequest(domain_name=DOMAIN, app_name=APP, stream_name=STREAM),
            "Delete without a RecordId",
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidParams",
        )

    print("all checks passed", flush=True)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(failure, flush=True)
        sys.exit(1)

#!/usr/bin/env python3
"""Sends requests whose fields are very long to record-index through stubs
that grpcio-tools generated from the public .proto, over a channel with
grpcio's DEFAULT options, as another team's Python service would.

grpcio refuses a response whose metadata passes its default limits (a soft
limit of 8 KiB, a hard one of 16 KiB): an error message that quoted a long
field whole would reach this client as RESOURCE_EXHAUSTED "received
metadata size exceeds ... limit" instead of the documented error code.

The cases come from a JSON file (a list of {name, rpc, request,
authorization}; `request` uses the proto's JSON names). For each case the
script prints one line `result {json}` with what the client saw: the gRPC
code, ErrorInfo.reason, whether the message starts with the reason and the
ErrorInfo's RequestId matches x-request-id, the size the status takes in
the trailers, and, for a Delete that succeeds, each id's Message.

usage: bounded_errors.py --address HOST:PORT --stubs DIR --cases FILE
"""

import argparse
import base64
import json
import sys

# What grpc counts for each metadata entry besides its name and value
# (HPACK's per-entry overhead, which grpc's size limits include).
ENTRY_OVERHEAD = 32


def metadata_value(metadata, key):
    for item in metadata or ():
        if item.key == key:
            return item.value
    return None


def percent_encoded_len(message):
    """Length of grpc-message on the wire: bytes outside printable ASCII,
    and '%', are sent as %XX."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in message.encode("utf-8"))


def status_bytes(error):
    """Bytes the status takes in the trailers, counted as grpc counts them
    against its metadata limits: grpc-status, grpc-message, and every
    trailer (binary ones base64-encoded without padding)."""
    total = len("grpc-status") + 2 + ENTRY_OVERHEAD
    total += len("grpc-message") + percent_encoded_len(error.details() or "") + ENTRY_OVERHEAD
    for item in error.trailing_metadata() or ():
        value = item.value
        if item.key.endswith("-bin"):
            size = len(base64.b64encode(value).rstrip(b"="))
        else:
            size = len(value.encode("utf-8") if isinstance(value, str) else value)
        total += len(item.key) + size + ENTRY_OVERHEAD
    return total


def error_result(error, status_pb2, error_details_pb2):
    message = error.details() or ""
    result = {
        "code": error.code().name,
        "reason": None,
        "message_head": message[:160],
        "message_starts_with_reason": False,
        "request_id_matches": False,
        "status_bytes": status_bytes(error),
    }
    details_bin = metadata_value(error.trailing_metadata(), "grpc-status-details-bin")
    if details_bin is None:
        return result
    status = status_pb2.Status.FromString(details_bin)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            request_id = metadata_value(error.trailing_metadata(), "x-request-id") or metadata_value(
                error.initial_metadata(), "x-request-id"
            )
            result["reason"] = info.reason
            result["message_starts_with_reason"] = message.startswith(f"{info.reason}: ")
            result["request_id_matches"] = request_id is not None and info.metadata.get("RequestId") == request_id
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--stubs", required=True, help="directory of the generated modules")
    parser.add_argument("--cases", required=True, help="JSON file of the requests to send")
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    from google.protobuf import json_format
    from google.rpc import error_details_pb2, status_pb2
    from recordindex.v1 import record_index_pb2 as pb
    from recordindex.v1 import record_index_pb2_grpc as pb_grpc

    with open(args.cases, encoding="utf-8") as cases_file:
        cases = json.load(cases_file)

    # Default options on purpose: the limits a user's client has.
    with grpc.insecure_channel(args.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.RecordIndexStub(channel)
        for case in cases:
            request = json_format.ParseDict(case["request"], getattr(pb, case["rpc"] + "Request")())
            call = getattr(stub, case["rpc"])
            metadata = [("authorization", case["authorization"])]
            try:
                reply = call(request, metadata=metadata, timeout=30)
            except grpc.RpcError as error:
                result = error_result(error, status_pb2, error_details_pb2)
            else:
                result = {
                    "code": "OK",
                    "delete_messages": [info.message for info in getattr(reply, "record_delete_info_list", [])],
                }
            result["name"] = case["name"]
            print("result " + json.dumps(result, ensure_ascii=True), flush=True)
    print("all cases sent", flush=True)


if __name__ == "__main__":
    main()

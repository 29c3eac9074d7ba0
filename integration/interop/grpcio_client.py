#!/usr/bin/env python3
"""The gRPC interop test cases (doc/interop-test-descriptions.md), run by Python
grpcio against any grpc.testing.TestService server.

  grpcio_client.py --port 50051 [--host 127.0.0.1] [--test_case NAME|all]

Prints one line per case and exits non-zero when any case fails.
"""
import argparse
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import protos  # noqa: E402

empty_pb2, _, messages_pb2, _, test_pb2, test_pb2_grpc = protos.load(
    "grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto")

REQUEST_SIZES = [27182, 8, 1828, 45904]
RESPONSE_SIZES = [31415, 9, 2653, 58979]
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


def empty_unary(stub, channel):
    response = stub.EmptyCall(empty_pb2.Empty(), timeout=10)
    check(isinstance(response, empty_pb2.Empty), "response is not Empty")


def large_unary(stub, channel):
    response = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)), timeout=10)
    check(len(response.payload.body) == 314159, f"payload size {len(response.payload.body)}")


def client_streaming(stub, channel):
    response = stub.StreamingInputCall(
        (messages_pb2.StreamingInputCallRequest(payload=payload(s)) for s in REQUEST_SIZES), timeout=10)
    check(response.aggregated_payload_size == 74922, f"aggregated size {response.aggregated_payload_size}")


def server_streaming(stub, channel):
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=s) for s in RESPONSE_SIZES])
    sizes = [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=10)]
    check(sizes == RESPONSE_SIZES, f"response sizes {sizes}")


class Pipe:
    """Requests for a bidirectional call, fed one at a time."""

    def __init__(self):
        import queue
        self.queue = queue.Queue()

    def add(self, item):
        self.queue.put(item)

    def close(self):
        self.queue.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.queue.get()
        if item is None:
            raise StopIteration
        return item


def ping_pong(stub, channel):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=10)
    for req_size, resp_size in zip(REQUEST_SIZES, RESPONSE_SIZES):
        pipe.add(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=resp_size)], payload=payload(req_size)))
        response = next(call)
        check(len(response.payload.body) == resp_size, f"response size {len(response.payload.body)}")
    pipe.close()
    check(next(call, None) is None, "more responses than requests")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")


def empty_stream(stub, channel):
    call = stub.FullDuplexCall(iter([]), timeout=10)
    check(next(call, None) is None, "a response to no request")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")


def custom_metadata(stub, channel):
    metadata = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab"))
    response, call = stub.UnaryCall.with_call(
        messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)), metadata=metadata, timeout=10)
    check(len(response.payload.body) == 314159, "unary payload size")
    check((ECHO_INITIAL, "test_initial_metadata_value") in call.initial_metadata(),
          f"unary initial metadata {call.initial_metadata()}")
    check((ECHO_TRAILING, b"\xab\xab\xab") in call.trailing_metadata(),
          f"unary trailing metadata {call.trailing_metadata()}")
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, metadata=metadata, timeout=10)
    pipe.add(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=payload(271828)))
    response = next(call)
    check(len(response.payload.body) == 314159, "streaming payload size")
    pipe.close()
    check(next(call, None) is None, "extra response")
    check((ECHO_INITIAL, "test_initial_metadata_value") in call.initial_metadata(),
          f"streaming initial metadata {call.initial_metadata()}")
    check((ECHO_TRAILING, b"\xab\xab\xab") in call.trailing_metadata(),
          f"streaming trailing metadata {call.trailing_metadata()}")


def expect_status(function, code, message):
    try:
        function()
    except grpc.RpcError as error:
        check(error.code() == code, f"status {error.code()} (wanted {code})")
        check(message is None or error.details() == message, f"message {error.details()!r} (wanted {message!r})")
        return
    raise Failure(f"the call succeeded; wanted {code}")


def status_code_and_message(stub, channel):
    message = "test status message"
    status = messages_pb2.EchoStatus(code=2, message=message)
    expect_status(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=10),
                  grpc.StatusCode.UNKNOWN, message)

    def duplex():
        for _ in stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]),
                                     timeout=10):
            pass
    expect_status(duplex, grpc.StatusCode.UNKNOWN, message)


def special_status_message(stub, channel):
    message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    status = messages_pb2.EchoStatus(code=2, message=message)
    expect_status(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=10),
                  grpc.StatusCode.UNKNOWN, message)


def unimplemented_method(stub, channel):
    expect_status(lambda: stub.UnimplementedMethod(empty_pb2.Empty(), timeout=10), grpc.StatusCode.UNIMPLEMENTED, None)


def unimplemented_service(stub, channel):
    other = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_status(lambda: other.UnimplementedCall(empty_pb2.Empty(), timeout=10), grpc.StatusCode.UNIMPLEMENTED,
                  None)


def timeout_on_sleeping_server(stub, channel):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=0.001)
    pipe.add(messages_pb2.StreamingOutputCallRequest(payload=payload(27182)))
    try:
        next(call)
        raise Failure("a response arrived before the deadline")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"status {error.code()}")
    finally:
        pipe.close()


def cancel_after_begin(stub, channel):
    pipe = Pipe()
    future = stub.StreamingInputCall.future(pipe, timeout=10)
    time.sleep(0.05)
    future.cancel()
    check(future.cancelled(), "the call was not cancelled")
    pipe.close()
    try:
        future.result()
        raise Failure("a cancelled call returned a result")
    except grpc.FutureCancelledError:
        pass


def cancel_after_first_response(stub, channel):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=10)
    pipe.add(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=payload(27182)))
    response = next(call)
    check(len(response.payload.body) == 31415, "response size")
    call.cancel()
    pipe.close()
    try:
        next(call)
        raise Failure("a response after cancellation")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.CANCELLED, f"status {error.code()}")


CASES = [empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream, custom_metadata,
         status_code_and_message, special_status_message, unimplemented_method, unimplemented_service,
         timeout_on_sleeping_server, cancel_after_begin, cancel_after_first_response]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--test_case", default="all")
    args = parser.parse_args()
    cases = CASES if args.test_case == "all" else [c for c in CASES if c.__name__ in args.test_case.split(",")]
    if not cases:
        print(f"unknown test case {args.test_case}", file=sys.stderr)
        return 2
    failures = 0
    with grpc.insecure_channel(f"{args.host}:{args.port}") as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for case in cases:
            try:
                case(stub, channel)
                print(f"PASS {case.__name__}")
            except Exception as error:  # one failing case must not hide the others
                failures += 1
                detail = f"{error.code()}: {error.details()}" if isinstance(error, grpc.RpcError) else repr(error)
                print(f"FAIL {case.__name__}: {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

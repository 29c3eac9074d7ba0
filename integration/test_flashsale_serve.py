"""`flashsale serve` as a user runs it: health, identity, rich errors, bad input
from grpcio and nghttp, metrics, JSON logs, graceful shutdown, h2load."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from google.rpc import error_details_pb2

from conftest import Process, binary
import protos

inventory_pb2, inventory_grpc = protos.load("flashsale/v1/inventory.proto")
booking_pb2, booking_grpc = protos.load("flashsale/v1/booking.proto")
checkout_pb2, checkout_grpc = protos.load("flashsale/v1/checkout.proto")
TOKEN = "integration-token"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    store = tmp_path_factory.mktemp("serve") / "flashsale.db"
    server = Process([binary("flashsale"), "serve", "--grpc-port", "0", "--metrics-port", "0", "--store", f"sqlite:{store}",
                      "--service-token", TOKEN, "--log-format", "json", "--max-receive-message-size", "1048576"],
                     env={"FLASHSALE_SERVICE_TOKEN": ""})
    # The metrics line comes first on stdout, then "listening on".
    yield server
    server.stop()


def metrics_port(server):
    match = re.search(r'"address":"[^"]*:(\d+)"[^\n]*metrics endpoint listening|metrics endpoint listening[^\n]*:(\d+)',
                      server.stderr())
    assert match, server.stderr()
    return int(match.group(1) or match.group(2))


def channel(server):
    return grpc.insecure_channel(f"127.0.0.1:{server.port}")


def test_help_describes_every_flag():
    out = subprocess.run([binary("flashsale"), "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag in ["--grpc-port", "--role", "--metrics-port", "--service-token", "--log-format",
                 "--max-receive-message-size", "--max-concurrent-streams", "--shutdown-grace",
                 "--inventory-address", "--booking-address", "--checkout-address", "--payments-address", "--store",
                 "--demo-sale"]:
        assert flag in out.stdout, flag


def test_bad_flags_are_refused_clearly():
    out = subprocess.run([binary("flashsale"), "serve", "--booking-address", "nowhere"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "--booking-address must be host:port" in out.stderr


def test_health_reports_each_service(serve):
    with channel(serve) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for name in ["", "flashsale.v1.Inventory", "flashsale.v1.Booking", "flashsale.v1.Checkout",
                     "flashsale.v1.Payments"]:
            assert stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status == \
                health_pb2.HealthCheckResponse.SERVING, name
        with pytest.raises(grpc.RpcError) as error:
            stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="flashsale.v1.Booking"), timeout=5)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


def test_identity_needs_the_service_token(serve):
    with channel(serve) as ch:
        stub = booking_grpc.BookingStub(ch)
        with pytest.raises(grpc.RpcError) as error:
            stub.Book(booking_pb2.BookRequest(sale_id="s"), metadata=(("x-flashsale-user-id", "u1"),), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as error:
            stub.Book(booking_pb2.BookRequest(sale_id="s"), metadata=(
                ("x-flashsale-service-token", "wrong"), ("x-flashsale-user-id", "u1")), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        admin = inventory_grpc.InventoryStub(ch)
        with pytest.raises(grpc.RpcError) as error:
            admin.CreateSale(inventory_pb2.CreateSaleRequest(), metadata=(
                ("x-flashsale-service-token", TOKEN), ("x-flashsale-user-id", "u1"), ("x-flashsale-roles", "buyer")),
                timeout=5)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_rich_error_details_are_readable_by_grpcio(serve):
    with channel(serve) as ch:
        stub = checkout_grpc.CheckoutStub(ch)
        with pytest.raises(grpc.RpcError) as error:
            stub.StartCheckout(checkout_pb2.StartCheckoutRequest(), metadata=(
                ("x-flashsale-service-token", TOKEN), ("x-flashsale-user-id", "u1")), timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details() == "booking_id: must not be empty"
        status = rpc_status.from_call(error.value)
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert info.reason == "INVALID_ARGUMENT" and info.domain == "flashsale.v1"
        bad = error_details_pb2.BadRequest()
        assert status.details[1].Unpack(bad)
        assert bad.field_violations[0].field == "booking_id"


def test_oversized_request_is_resource_exhausted(serve):
    with channel(serve) as ch:
        call = ch.unary_unary("/grpc.health.v1.Health/Check")
        big = b"\x0a" + b"\x80\x80\x40" + b"x" * (1 << 20)  # field 1, 1 MiB string: over the 1 MiB limit
        with pytest.raises(grpc.RpcError) as error:
            call(big, timeout=10)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in error.value.details()
        # The server still answers.
        assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1


def nghttp(server, path, body, headers=(), method=None):
    body_path = f"/tmp/flashsale-nghttp-{os.getpid()}.bin"
    with open(body_path, "wb") as f:
        f.write(body)
    args = ["nghttp", "-nv", "-d", body_path, *[x for h in headers for x in ("-H", h)],
            f"http://127.0.0.1:{server.port}{path}"]
    if method:
        args[1:1] = ["-H", f":method: {method}"]
    out = subprocess.run(args, capture_output=True, timeout=30).stdout.decode("utf-8", "replace")
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"recv \(stream_id=\d+\) ([^:\s][^:]*|:\w+): (.*)", out)}


GRPC = ("content-type: application/grpc", "te: trailers")


@pytest.mark.parametrize("headers,body,path,expect", [
    (("content-type: text/plain",), b"\0\0\0\0\0", "/grpc.health.v1.Health/Check", {":status": "415", "grpc-status": "3"}),
    (GRPC, b"\0\0\0\0\0", "/grpc.health.v1.Health/Nope", {":status": "200", "grpc-status": "12"}),
    (GRPC, b"\0\0\0\0\0", "/no.Such/Service", {":status": "200", "grpc-status": "12"}),
    (GRPC, b"\x07\0\0\0\0", "/grpc.health.v1.Health/Check", {"grpc-status": "13"}),
    (GRPC, b"\0\0\0\0\x09\x0a", "/grpc.health.v1.Health/Check", {"grpc-status": "13"}),
    (GRPC, b"\0\0\0\0\x02\xff\xff", "/grpc.health.v1.Health/Check", {"grpc-status": "13"}),
    (GRPC + ("grpc-encoding: gzip",), b"\0\0\0\0\0", "/grpc.health.v1.Health/Check", {"grpc-status": "12"}),
    (GRPC + ("grpc-timeout: never",), b"\0\0\0\0\0", "/grpc.health.v1.Health/Check", {"grpc-status": "13"}),
    (GRPC + ("grpc-timeout: 1S", "x-custom: 1"), b"\0\0\0\0\0", "/grpc.health.v1.Health/Check", {"grpc-status": "0"}),
])
def test_nghttp_raw_requests(serve, headers, body, path, expect):
    got = nghttp(serve, path, body, headers)
    for key, value in expect.items():
        assert got.get(key) == value, got
    assert serve.alive()


def test_h2load_smoke(serve):
    body = b"\0\0\0\0\x18\x0a\x16flashsale.v1.Inventory"
    body_path = f"/tmp/flashsale-h2load-{os.getpid()}.bin"
    with open(body_path, "wb") as f:
        f.write(body)
    out = subprocess.run(["h2load", "-n", "5000", "-c", "4", "-m", "16", "-d", body_path,
                          "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "grpc-timeout: 5S",
                          f"http://127.0.0.1:{serve.port}/grpc.health.v1.Health/Check"],
                         capture_output=True, text=True, timeout=120).stdout
    assert "5000 succeeded, 0 failed, 0 errored, 0 timeout" in out, out


def test_metrics_count_calls_by_method_and_code(serve):
    with channel(serve) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for _ in range(5):
            stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port(serve)}/metrics", timeout=5).read().decode()
    handled = re.search(r'grpc_server_handled_total\{[^}]*grpc_code="OK"[^}]*grpc_method="Check"[^}]*\} (\d+)', text) or \
        re.search(r'grpc_server_handled_total\{[^}]*grpc_method="Check"[^}]*grpc_code="OK"[^}]*\} (\d+)', text) or \
        re.search(r'grpc_server_handled_total\{(?=[^}]*grpc_method="Check")(?=[^}]*grpc_code="OK")[^}]*\} (\d+)', text)
    assert handled and int(handled.group(1)) >= 5, text[:2000]
    assert "grpc_server_handling_seconds_bucket" in text
    assert re.search(r"rpc_server_connections", text)
    assert "grpc_code=\"UNIMPLEMENTED\"" in text


def test_logs_are_json_lines(serve):
    lines = [l for l in serve.stderr().splitlines() if l.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= record.keys()


def _streaming_output_call(channel, count, size, interval_us):
    """A grpc.testing StreamingOutputCall of `count` messages of `size` bytes, `interval_us` apart."""
    test_grpc = protos.load("grpc/testing/test.proto")[1]
    messages_pb2 = protos.load("grpc/testing/messages.proto")[0]
    request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=size, interval_us=interval_us) for _ in range(count)])
    return test_grpc.TestServiceStub(channel).StreamingOutputCall(request, timeout=30)


def test_client_pings_while_the_server_streams_are_not_strikes():
    # grpcio probes the bandwidth with a PING after DATA it receives: as in
    # grpc-go and grpc core, pings answered by data are not "too many pings".
    server = Process([binary("flashsale-interop"), "serve", "--port", "0"])
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        call = _streaming_output_call(ch, count=16, size=1000, interval_us=50_000)
        assert [len(r.payload.body) for r in call] == [1000] * 16
        assert call.code() == grpc.StatusCode.OK
    server.stop()


def test_sigterm_drains_in_flight_calls():
    server = Process([binary("flashsale-interop"), "serve", "--port", "0"])
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        call = _streaming_output_call(ch, count=4, size=10, interval_us=300_000)
        first = next(call)
        assert len(first.payload.body) == 10
        server.send_signal(signal.SIGTERM)
        rest = [len(r.payload.body) for r in call]
        assert rest == [10, 10, 10]
        assert call.code() == grpc.StatusCode.OK
    assert server.proc.wait(15) == 0
    with pytest.raises(ConnectionRefusedError):
        import socket
        socket.create_connection(("127.0.0.1", server.port), timeout=2)

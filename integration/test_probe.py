"""flashsale-probe as a user runs it: against our server (list, describe, the
four call kinds, metadata, errors with decoded details, bad JSON, the
compiled-in fallback without reflection) and against a Python grpcio server
with grpcio-reflection (list, describe, unary, streaming both ways, an error
status)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import Process, ROOT, binary

TOKEN = "probe-token"


def probe(address, *args, stdin=None, timeout=30):
    return subprocess.run([binary("flashsale-probe"), address, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def lines(out):
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    store = tmp_path_factory.mktemp("probe") / "flashsale.db"
    server = Process([binary("flashsale"), "serve", "--grpc-port", "0", "--store", f"sqlite:{store}",
                      "--service-token", TOKEN, "--demo-sale"])
    yield f"127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def python_server():
    server = Process([sys.executable, os.path.join(ROOT, "integration", "interop", "grpcio_server.py"), "--port", "0",
                      "--reflection"])
    yield f"127.0.0.1:{server.port}"
    server.stop()


def test_list_and_describe_our_services(ours):
    out = probe(ours, "list")
    assert out.returncode == 0, out.stderr
    assert "flashsale.v1.Booking" in out.stdout.split() and "grpc.health.v1.Health" in out.stdout.split()
    assert probe(ours, "list", "flashsale.v1.Booking").stdout.split() == [
        "flashsale.v1.Booking.Book", "flashsale.v1.Booking.Confirm", "flashsale.v1.Booking.Cancel",
        "flashsale.v1.Booking.GetBooking", "flashsale.v1.Booking.Release"]
    text = probe(ours, "describe", "flashsale.v1.BookRequest").stdout
    assert "string sale_id = 1;" in text and "string idempotency_key = 2;" in text
    method = lines(probe(ours, "describe", "flashsale.v1.Inventory.WatchAvailability", "--format", "json"))[0]
    assert method["serverStreaming"] is True and method["outputType"] == "flashsale.v1.Availability"
    missing = probe(ours, "describe", "flashsale.v1.Nope")
    assert missing.returncode == 1 and "flashsale.v1.Nope" in missing.stderr


def test_calls_of_every_kind_against_our_server(ours):
    sales = lines(probe(ours, "call", "flashsale.v1.Inventory/ListSales", "-d", '{"pageSize": 5}', "--format", "json"))
    sale = sales[0]["sales"][0]
    assert sale["itemId"] == "demo-phone" and sale["quantity"] == "10000"  # int64 as a string
    # Metadata with -H; the request from standard input.
    booked = probe(ours, "call", "flashsale.v1.Booking.Book", "-H", f"x-flashsale-service-token: {TOKEN}",
                   "-H", "x-flashsale-user-id: probe-user", "--format", "json",
                   stdin=json.dumps({"saleId": sale["saleId"], "idempotencyKey": "probe-1"}))
    assert booked.returncode == 0, booked.stderr
    assert lines(booked)[0]["booking"]["userId"] == "probe-user"
    # Server streaming: each message as it arrives, until the deadline.
    watched = probe(ours, "call", "flashsale.v1.Inventory/WatchAvailability", "-d", json.dumps({"saleId": sale["saleId"]}),
                    "--deadline", "1s", "--format", "json")
    assert watched.returncode == 64 + 4
    messages = lines(watched)
    assert messages[-1]["code"] == "DEADLINE_EXCEEDED"
    # The first count may predate the hold by the stated staleness bound
    # (one store read, 100 ms); the hold shows within the second.
    counts = [m["available"] for m in messages[:-1]]
    assert counts and set(counts) <= {"10000", "9999"} and counts[-1] == "9999", counts
    # Bidirectional: one JSON object per line in, each answer out.
    reflected = probe(ours, "call", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "--format", "json",
                      stdin='{"listServices": ""}\n\n{"fileByFilename": "flashsale/v1/money.proto"}\n')
    answers = lines(reflected)
    assert "listServicesResponse" in answers[0] and "fileDescriptorResponse" in answers[1]


def test_errors_are_status_name_message_and_details(ours):
    as_json = probe(ours, "call", "flashsale.v1.Inventory/GetSale", "-d", '{"saleId": "nope"}', "--format", "json")
    assert as_json.returncode == 64 + 5
    error = lines(as_json)[0]
    assert error["code"] == "NOT_FOUND" and error["codeNumber"] == 5 and error["message"] == "no sale nope"
    assert error["details"] == [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SALE_NOT_FOUND",
                                 "domain": "flashsale.v1"}]
    as_text = probe(ours, "call", "flashsale.v1.Inventory/GetSale", "-d", '{"saleId": "nope"}')
    assert as_text.returncode == 69
    assert "ERROR: NOT_FOUND (5)" in as_text.stderr and "SALE_NOT_FOUND" in as_text.stderr
    unauthenticated = probe(ours, "call", "flashsale.v1.Booking/Book", "-d", '{"saleId": "x", "idempotencyKey": "k"}')
    assert unauthenticated.returncode == 64 + 16, unauthenticated.stderr
    bad = probe(ours, "call", "flashsale.v1.Inventory/GetSale", "-d", '{"saleId": 5}')
    assert bad.returncode == 1 and "saleId: expected string, got number" in bad.stderr
    unknown = probe(ours, "call", "flashsale.v1.Inventory/Nope", "-d", "{}")
    assert unknown.returncode == 1 and "no method" in unknown.stderr
    usage = probe(ours, "frobnicate")
    assert usage.returncode == 64


def test_health(ours):
    out = probe(ours, "health", "flashsale.v1.Booking", "--format", "json")
    assert out.returncode == 0 and lines(out) == [{"status": "SERVING"}]
    assert probe(ours, "health", "nope").returncode == 64 + 5


def test_without_reflection_the_compiled_in_contracts_are_used(tmp_path):
    server = Process([binary("flashsale"), "serve", "--grpc-port", "0", "--store", f"sqlite:{tmp_path / 'f.db'}",
                      "--service-token", TOKEN, "--demo-sale", "--no-reflection"])
    try:
        address = f"127.0.0.1:{server.port}"
        out = probe(address, "call", "flashsale.v1.Inventory/ListSales", "-d", "{}", "--format", "json", "-v")
        assert out.returncode == 0, out.stderr
        assert lines(out)[0]["sales"][0]["itemId"] == "demo-phone"
        assert "no reflection" in out.stderr
    finally:
        server.stop()


def test_against_a_grpcio_server_with_reflection(python_server):
    services = probe(python_server, "list").stdout.split()
    assert "grpc.testing.TestService" in services
    described = probe(python_server, "describe", "grpc.testing.SimpleRequest").stdout
    assert "grpc.testing.Payload payload" in described
    unary = probe(python_server, "call", "grpc.testing.TestService/UnaryCall", "-d", '{"responseSize": 3}',
                  "--format", "json")
    assert unary.returncode == 0, unary.stderr
    assert lines(unary) == [{"payload": {"body": "AAAA"}}]
    streamed = probe(python_server, "call", "grpc.testing.TestService/StreamingOutputCall", "--format", "json",
                     "-d", '{"responseParameters": [{"size": 1}, {"size": 2}]}')
    assert lines(streamed) == [{"payload": {"body": "AA=="}}, {"payload": {"body": "AAA="}}]
    client_streamed = probe(python_server, "call", "grpc.testing.TestService/StreamingInputCall", "--format", "json",
                            stdin='{"payload": {"body": "AAAA"}}\n{"payload": {"body": "AA=="}}\n')
    assert lines(client_streamed) == [{"aggregatedPayloadSize": 4}]
    duplex = probe(python_server, "call", "grpc.testing.TestService/FullDuplexCall", "--format", "json",
                   stdin='{"responseParameters": [{"size": 1}]}\n{"responseParameters": [{"size": 2}]}\n')
    assert lines(duplex) == [{"payload": {"body": "AA=="}}, {"payload": {"body": "AAA="}}]
    failed = probe(python_server, "call", "grpc.testing.TestService/UnaryCall", "--format", "json",
                   "-d", '{"responseStatus": {"code": 3, "message": "boom"}}')
    assert failed.returncode == 64 + 3
    assert lines(failed) == [{"code": "INVALID_ARGUMENT", "codeNumber": 3, "message": "boom", "details": []}]

"""The gRPC interop test cases in both directions: Python grpcio's client
against our server, and our client against Python grpcio's server."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, binary

CASES = ["empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
         "custom_metadata", "status_code_and_message", "special_status_message", "unimplemented_method",
         "unimplemented_service", "timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response"]


def run(args):
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_grpcio_client_against_our_server(our_interop_server, case):
    code, output = run([sys.executable, os.path.join(ROOT, "integration", "interop", "grpcio_client.py"),
                        "--port", str(our_interop_server.port), "--test_case", case])
    assert code == 0 and f"PASS {case}" in output, output
    assert our_interop_server.alive()


@pytest.mark.parametrize("case", CASES)
def test_our_client_against_grpcio_server(grpcio_interop_server, case):
    code, output = run([binary("flashsale-interop"), "client", "--port", str(grpcio_interop_server.port),
                        "--test-case", case])
    assert code == 0 and f"PASS {case}" in output, output


def test_our_client_against_our_server(our_interop_server):
    code, output = run([binary("flashsale-interop"), "client", "--port", str(our_interop_server.port)])
    assert code == 0, output
    assert output.count("PASS") == len(CASES), output

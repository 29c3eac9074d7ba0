"""Shared fixtures of the multi-process tests: real servers started as
processes, on free loopback ports, stopped after the tests."""
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("FLASHSALE_BIN", os.path.join(ROOT, ".build", "debug"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Process:
    """A server process that prints `listening on HOST:PORT` when ready."""

    def __init__(self, args, env=None, ready_timeout=30):
        self.args = args
        self.log_path = f"/tmp/flashsale-it-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={**os.environ, **(env or {})})
        self.port = None
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on [^\s]*:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{args[0]} did not start: {self.stderr()}")

    def stderr(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def binary(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: build first (make build)")
    return path


@pytest.fixture(scope="module")
def our_interop_server():
    server = Process([binary("flashsale-interop"), "serve", "--port", "0"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def grpcio_interop_server():
    server = Process([sys.executable, os.path.join(ROOT, "integration", "interop", "grpcio_server.py"), "--port", "0"])
    yield server
    server.stop()

"""Python stubs of our .proto contracts for the integration tests, compiled on
demand with grpcio-tools into a cache folder (never committed).

Files under proto/grpc/ are compiled as if they lived under grpcproto/, because
a Python module path `grpc.testing` would collide with grpcio's own `grpc`
package. Only the Python module path changes: the proto packages and service
names (`grpc.testing.TestService`) stay the same, and so does the wire format.
"""
import importlib
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".build", "python-stubs")
STAGE = os.path.join(OUT, "_proto")


def _python_path(proto):
    return "grpcproto/" + proto[len("grpc/"):] if proto.startswith("grpc/") else proto


def _stage(proto):
    """Copies proto/<proto> to the staging tree, renaming grpc/ imports; returns its staged path."""
    staged = _python_path(proto)
    target = os.path.join(STAGE, staged)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(os.path.join(ROOT, "proto", proto)) as f:
        text = f.read()
    text = re.sub(r'import "grpc/', 'import "grpcproto/', text)
    with open(target, "w") as f:
        f.write(text)
    for dependency in re.findall(r'import "((?:grpc|flashsale)/[^"]+)"', text.replace("grpcproto/", "grpc/")):
        _stage(dependency)
    return staged


def load(*protos):
    """Compiles the given proto/ files and returns their _pb2 and _pb2_grpc modules, in order."""
    shutil.rmtree(STAGE, ignore_errors=True)
    staged = [_stage(p) for p in protos]
    everything = []
    for dirpath, _, files in os.walk(STAGE):
        everything += [os.path.relpath(os.path.join(dirpath, f), STAGE) for f in files if f.endswith(".proto")]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + STAGE, "-I" + os.path.join(ROOT, "proto"),
                    "--python_out=" + OUT, "--grpc_python_out=" + OUT, *sorted(everything)], check=True)
    if OUT not in sys.path:
        sys.path.insert(0, OUT)
    modules = []
    for p in staged:
        base = p[:-len(".proto")].replace("/", ".")
        modules.append(importlib.import_module(base + "_pb2"))
        modules.append(importlib.import_module(base + "_pb2_grpc"))
    return modules

"""The sandbox: a fake TusFacturas API v2 over real HTTP (design.md, "The sandbox").

`python -m ops.sandbox --help` serves it; `SandboxProcess` runs it in a child process for
tests and benchmarks; `GET /_sandbox/ledger` says what it issued and every rule it saw broken.
"""

from ops.sandbox.config import SandboxConfig
from ops.sandbox.engine import Sandbox
from ops.sandbox.faults import Faults, FaultSpec
from ops.sandbox.server import SandboxError, SandboxProcess, run

__all__ = [
    "FaultSpec",
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxProcess",
    "run",
]

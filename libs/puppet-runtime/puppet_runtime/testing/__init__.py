"""Test kit: real servers on port 0, health waits, rich-status unpacking, fuzzing and fake HTTP
servers. Tests import everything from here."""

from puppet_runtime.testing.fakes import HttpAnswer, HttpResponder, http_fake
from puppet_runtime.testing.fuzz import (
    FuzzOutcome,
    build_message,
    call_sync,
    fuzz_scalars,
    message_values,
    serve_in_thread,
)
from puppet_runtime.testing.servers import (
    free_port,
    load_sibling,
    mongo_wire_server,
    running,
    serve_servicer,
    status_of,
    wait_serving,
)

__all__ = [
    "FuzzOutcome",
    "HttpAnswer",
    "HttpResponder",
    "build_message",
    "call_sync",
    "free_port",
    "fuzz_scalars",
    "http_fake",
    "load_sibling",
    "message_values",
    "mongo_wire_server",
    "running",
    "serve_in_thread",
    "serve_servicer",
    "status_of",
    "wait_serving",
]

"""Where the services are and how long to wait for them: one frozen value per invocation."""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICES = ("agent", "memory", "llm", "social", "chain")
"""Every service of the suite, in the order `puppet status` shows them."""

DEFAULT_PORTS = {"agent": 50051, "memory": 50052, "llm": 50053, "social": 50054, "chain": 50055}
"""The ports `python3 dev.py up` runs the services on."""


def default_address(service: str) -> str:
    """`127.0.0.1:<port>` of `service` as `dev.py up` runs it."""
    return f"127.0.0.1:{DEFAULT_PORTS[service]}"


@dataclass(frozen=True)
class Config:
    """What every command needs: addresses, the per-call deadline and the admin token.

    Args:
        addresses: `host:port` per service name (see SERVICES).
        timeout_s: Deadline of each call, in seconds, retries included.
        admin_token: Sent as `authorization: Bearer <token>` when set (operator posts, reviews).
    """

    addresses: dict[str, str] = field(
        default_factory=lambda: {name: default_address(name) for name in SERVICES}
    )
    timeout_s: float = 10.0
    admin_token: str | None = None

    def address(self, service: str) -> str:
        """The address of `service`."""
        return self.addresses[service]

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the admin token, when one is configured."""
        if self.admin_token:
            return (("authorization", f"Bearer {self.admin_token}"),)
        return ()

"""Admin-token check shared by every service whose contract names ADMIN_TOKEN_REQUIRED calls."""

from __future__ import annotations

import hmac
import ipaddress

from pydantic import SecretStr

from puppet_runtime.errors import Unauthenticated
from puppet_runtime.server import Context

__all__ = ["ADMIN_TOKEN_REQUIRED", "AdminGuard", "is_loopback"]

ADMIN_TOKEN_REQUIRED = "ADMIN_TOKEN_REQUIRED"


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    bare = host.strip().strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


class AdminGuard:
    """Admits admin calls: the configured token, or no token and a loopback-only server.

    The rule: when a token is configured, an admin call must carry metadata
    ``authorization: Bearer <token>`` (compared in constant time), whatever the bind address.
    When none is configured (the embedded default) admin calls are allowed only if the server
    is bound to a loopback address, so only processes on this machine can reach it; a server
    bound anywhere else refuses every admin call until a token is configured. Refusals are
    UNAUTHENTICATED with reason ADMIN_TOKEN_REQUIRED; the token never appears in an error.

    Args:
        token: The configured admin token, or None.
        host: The address the server binds (``ServiceSettings.host``).
    """

    def __init__(self, token: SecretStr | None, host: str) -> None:
        value = token.get_secret_value() if token is not None else ""
        self._expected = f"Bearer {value}".encode() if value else None
        self._open = self._expected is None and is_loopback(host)

    @property
    def configured(self) -> bool:
        """Whether an admin token is configured."""
        return self._expected is not None

    def allows(self, context: Context) -> bool:
        """Whether the call behind ``context`` may run an admin operation."""
        if self._expected is None:
            return self._open
        given = b""
        for key, value in context.invocation_metadata() or ():
            if key.lower() == "authorization":
                given = value if isinstance(value, bytes) else str(value).encode()
                break
        return hmac.compare_digest(given, self._expected)

    def check(self, context: Context, what: str) -> None:
        """Raise UNAUTHENTICATED (ADMIN_TOKEN_REQUIRED) unless the call may do ``what``.

        Args:
            context: The servicer context of the call.
            what: The operation, for the message and the ``operation`` metadata.
        """
        if self.allows(context):
            return
        hint = (
            "send metadata 'authorization: Bearer <admin token>'"
            if self._expected is not None
            else "configure an admin token (admin calls without one are served on loopback only)"
        )
        raise Unauthenticated(
            ADMIN_TOKEN_REQUIRED, f"{what} needs the admin token: {hint}.", {"operation": what}
        )

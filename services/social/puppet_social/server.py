"""Wire SocialService: store, network, planner, outbox worker and mention poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime import ServiceSpec, run

from puppet_social.accounts import (
    Accounts,
    AccountStore,
    CredentialCipher,
    MongoAccountStore,
    SqliteAccountStore,
    with_changes,
)
from puppet_social.mentions import MentionPoller
from puppet_social.network import (
    AccountRef,
    Credentials,
    CredentialsRejected,
    Network,
    PostRecord,
    RateInfo,
    Result,
)
from puppet_social.outbox import Outbox
from puppet_social.planner import RatePlanner
from puppet_social.servicer import SocialServicer
from puppet_social.settings import SocialSettings
from puppet_social.store import OutboxStore

log = logging.getLogger(__name__)


def credential_cipher(settings: SocialSettings) -> CredentialCipher:
    """The configured credentials key, else data_dir/credentials.key (created 0600)."""
    if settings.credentials_key is not None:
        return CredentialCipher(settings.credentials_key)
    return CredentialCipher.from_key_file(settings.data_dir / "credentials.key")


def open_store(settings: SocialSettings) -> tuple[OutboxStore, AccountStore]:
    cipher = credential_cipher(settings)
    if settings.store == "mongo":
        from puppet_social.store.mongo import MongoStore

        assert settings.mongo_uri is not None  # enforced by SocialSettings
        uri = settings.mongo_uri.get_secret_value()
        return MongoStore(uri, settings.mongo_database), MongoAccountStore(
            uri, settings.mongo_database, cipher
        )
    from puppet_social.store.sqlite import SqliteStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(settings.data_dir / "social.sqlite3"), SqliteAccountStore(
        settings.data_dir / "accounts.sqlite3", cipher
    )


def open_network(settings: SocialSettings) -> Network:
    if settings.network == "x":
        from puppet_social.network.x_api import XApiNetwork

        return XApiNetwork(base_url=settings.x_base_url)
    from puppet_social.network.sandbox import SandboxNetwork

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SandboxNetwork(settings.data_dir / "sandbox.sqlite3")


def default_credentials(settings: SocialSettings) -> Credentials | None:
    """The shared X credentials from settings (the legacy .env fallback), if all four are set."""
    parts = (
        settings.x_api_key,
        settings.x_api_key_secret,
        settings.x_access_token,
        settings.x_access_token_secret,
    )
    key, key_secret, token, token_secret = parts
    if key is None or key_secret is None or token is None or token_secret is None:
        return None
    return Credentials(key, key_secret, token, token_secret)


class PollingNetwork:
    """The network as the mention poller sees it: a 401 on a poll holds the account.

    The hold stops its polling and its outbox instead of backing off forever; VerifyAccount
    with working credentials lifts it.
    """

    def __init__(
        self, network: Network, on_rejected: Callable[[AccountRef], Awaitable[None]]
    ) -> None:
        self._network = network
        self._on_rejected = on_rejected

    async def mentions(
        self, account: AccountRef, *, since_id: str | None = None, limit: int = 100
    ) -> tuple[Sequence[PostRecord], RateInfo | None]:
        try:
            return await self._network.mentions(account, since_id=since_id, limit=limit)
        except CredentialsRejected:
            await self._on_rejected(account)
            raise

    async def me(self, account: AccountRef) -> tuple[str, str]:
        return await self._network.me(account)

    async def create_post(
        self,
        account: AccountRef,
        text: str,
        *,
        reply_to: str | None = None,
        quote_of: str | None = None,
    ) -> Result:
        return await self._network.create_post(account, text, reply_to=reply_to, quote_of=quote_of)

    async def delete_post(self, account: AccountRef, post_id: str) -> Result:
        return await self._network.delete_post(account, post_id)

    async def like(self, account: AccountRef, post_id: str) -> Result:
        return await self._network.like(account, post_id)

    async def repost(self, account: AccountRef, post_id: str) -> Result:
        return await self._network.repost(account, post_id)

    async def get_post(self, account: AccountRef, post_id: str) -> Result:
        return await self._network.get_post(account, post_id)

    async def conversation(
        self, account: AccountRef, post_id: str, *, limit: int = 20
    ) -> Sequence[PostRecord]:
        return await self._network.conversation(account, post_id, limit=limit)

    async def close(self) -> None:
        """The composition root closes the wrapped network itself."""


@dataclass
class Social:
    """Every long-lived part of the service, started and stopped together."""

    settings: SocialSettings
    store: OutboxStore
    network: Network
    accounts: Accounts
    planner: RatePlanner
    outbox: Outbox
    poller: MentionPoller
    clock: Callable[[], float]
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self._stop = asyncio.Event()
        await self.store.open()
        opener = getattr(self.network, "open", None)
        if opener is not None:
            await opener()
        await self.accounts.open()
        for record in self.accounts.all():
            if record.credentials_rejected:  # held before the restart: still held
                self.outbox.hold(record.account_id)
            else:
                self.poller.add_account(record.account_id)
        await self.outbox.reconcile()
        self._tasks = [
            asyncio.create_task(self._outbox_loop(), name="social-outbox"),
            asyncio.create_task(self.poller.run(self._stop), name="social-mentions"),
        ]

    async def _outbox_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.outbox.send_due()
            except Exception:
                log.exception("outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.outbox_interval_s)

    async def stop(self) -> None:
        self._stop.set()
        self.poller.close_subscribers()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)
        self._tasks = []
        for close in (self.accounts.close, self.network.close, self.store.close):
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", close)


def compose(
    settings: SocialSettings,
    *,
    store: OutboxStore | None = None,
    account_store: AccountStore | None = None,
    network: Network | None = None,
    clock: Callable[[], float] = time.time,
) -> Social:
    opened_store, opened_accounts = (
        (store, account_store)
        if store is not None and account_store is not None
        else open_store(settings)
    )
    network = network or open_network(settings)
    accounts = Accounts(opened_accounts, default_credentials(settings))
    planner = RatePlanner(opened_store, clock, default_tier=settings.default_tier)

    async def hold(account_id: str) -> None:
        """Hold the account (its credentials were rejected) and persist the hold."""
        outbox.hold(account_id)
        poller.remove_account(account_id)
        record = accounts.get(account_id)
        if record is not None and not record.credentials_rejected:
            await accounts.save(with_changes(record, credentials_rejected=True))

    outbox = Outbox(opened_store, network, planner, clock, account_ref=accounts.ref, on_hold=hold)

    async def rejected(ref: AccountRef) -> None:
        record = accounts.by_user_id(ref.user_id) if ref.user_id else None
        record = record or accounts.by_handle(ref.handle)
        if record is not None:
            await hold(record.account_id)

    poller = MentionPoller(
        opened_store,
        PollingNetwork(network, rejected),
        planner,
        clock,
        account_ref=accounts.ref,
        interval_s=settings.mention_poll_interval_s,
        stagger_s=0.0,
    )
    return Social(settings, opened_store, network, accounts, planner, outbox, poller, clock)


def build(settings: SocialSettings, social: Social | None = None) -> ServiceSpec:
    social = social or compose(settings)
    return ServiceSpec(
        domain="social.puppet",
        services=[pb.DESCRIPTOR.services_by_name["SocialService"]],
        register=lambda server: rpc.add_SocialServiceServicer_to_server(
            SocialServicer(social), server
        ),
        on_startup=[social.start],
        on_shutdown=[social.stop],
    )


def main() -> None:
    settings = SocialSettings()  # the only place env is read
    run(build(settings), settings)

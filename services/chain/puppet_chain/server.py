"""Wire ChainService: store, keystore, Solana RPC and Jupiter (or the local ones), the flows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from puppet.chain.v1 import chain_service_pb2 as pb
from puppet.chain.v1 import chain_service_pb2_grpc as rpc
from puppet_runtime import ServiceSpec, run

from puppet_chain.accounts import Accounts
from puppet_chain.actions import Actions
from puppet_chain.jupiter import Jupiter
from puppet_chain.localnet import Embedded, embedded
from puppet_chain.policy import WSOL, Rules
from puppet_chain.servicer import ChainServicer
from puppet_chain.settings import ChainSettings
from puppet_chain.solana import Solana
from puppet_chain.store import ChainStore
from puppet_chain.wallets import Keystore, decode_key, key_file

log = logging.getLogger(__name__)
MAINNET_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def open_store(settings: ChainSettings) -> ChainStore:
    if settings.store == "mongo":
        from puppet_chain.store.mongo import MongoStore

        assert settings.mongo_uri is not None  # enforced by ChainSettings
        return MongoStore(settings.mongo_uri.get_secret_value(), settings.mongo_database)
    from puppet_chain.store.sqlite import SqliteStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(settings.data_dir / "chain.sqlite3")


def open_keystore(settings: ChainSettings) -> Keystore:
    if settings.keystore_key is not None:
        return Keystore(decode_key(settings.keystore_key.get_secret_value()))
    return Keystore(key_file(settings.data_dir / "keystore.key"))


@dataclass
class Chain:
    """Every long-lived part of the service, started and stopped together."""

    store: ChainStore
    accounts: Accounts
    actions: Actions
    local: Embedded | None = None

    async def start(self) -> None:
        await self.store.open()

    async def stop(self) -> None:
        for close in (self.accounts.solana.close, self.accounts.jupiter.close, self.store.close):
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", close)
        if self.local is not None:
            self.local.stop()


def compose(settings: ChainSettings, *, store: ChainStore | None = None) -> Chain:
    """The service's parts; without an rpc_url, a local Solana and Jupiter start in-process."""
    local: Embedded | None = None
    symbols = {WSOL: "SOL", MAINNET_USDC: "USDC"}
    if settings.rpc_url is None:
        local = embedded(
            sol_usd=Decimal(str(settings.local_sol_price)),
            usdc_usd=Decimal(str(settings.local_usdc_price)),
        )
        rpc_url, jupiter_url, source = local.rpc_url, local.jupiter_url, "local"
        symbols = {WSOL: "SOL", str(local.usdc_mint): "USDC"}
        log.info("local Solana at %s, local Jupiter at %s", rpc_url, jupiter_url)
    else:
        rpc_url, jupiter_url, source = settings.rpc_url, settings.jupiter_url, "jupiter"
    store = store or open_store(settings)
    accounts = Accounts(
        store,
        open_keystore(settings),
        Solana(rpc_url, timeout_s=settings.rpc_timeout_s),
        Jupiter(jupiter_url, api_key=settings.jupiter_api_key, timeout_s=settings.rpc_timeout_s),
        cluster="localnet" if local is not None else settings.cluster,
        default_rules=Rules(enabled=settings.trading_enabled_by_default),
        symbols=symbols,
        price_source=source,
        confirm_timeout_s=settings.confirm_timeout_s,
    )
    actions = Actions(accounts, approval_ttl_s=settings.approval_ttl_s)
    return Chain(store, accounts, actions, local)


def build(settings: ChainSettings, chain: Chain | None = None) -> ServiceSpec:
    chain = chain or compose(settings)
    servicer = ChainServicer(
        chain.accounts,
        chain.actions,
        admin_token=settings.admin_token,
        confirm_timeout_s=settings.confirm_timeout_s,
    )
    return ServiceSpec(
        domain="chain.puppet",
        services=[pb.DESCRIPTOR.services_by_name["ChainService"]],
        register=lambda server: rpc.add_ChainServiceServicer_to_server(servicer, server),
        on_startup=[chain.start],
        on_shutdown=[chain.stop],
    )


def main() -> None:
    settings = ChainSettings()  # the only place env is read
    run(build(settings), settings)

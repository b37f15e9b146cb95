"""`puppet accounts` (SocialService.ListAccounts), and the account look-ups posting needs."""

from __future__ import annotations

import uuid

import grpc
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc

from puppet_cli import output
from puppet_cli.config import Config
from puppet_cli.rpc import Failure, connect, run

SOCIAL = pb.DESCRIPTOR.services_by_name["SocialService"]
OPERATOR = "operator"
"""The sandbox operator's account id and handle (a human at the CLI, never a persona)."""
PAGE_SIZE = 500
"""ListAccounts' maximum page."""

NETWORKS: dict[str, s.Network.ValueType] = {
    "sandbox": s.NETWORK_SANDBOX,
    "x": s.NETWORK_X,
    "all": s.NETWORK_UNSPECIFIED,
}


def network_name(network: s.Network.ValueType) -> str:
    """`sandbox`, `x` or `-`."""
    names: dict[s.Network.ValueType, str] = {s.NETWORK_SANDBOX: "sandbox", s.NETWORK_X: "x"}
    return names.get(network, "-")


async def list_accounts(
    stub: rpc.SocialServiceAsyncStub,
    *,
    network: s.Network.ValueType = s.NETWORK_UNSPECIFIED,
    agent: str = "",
) -> list[s.Account]:
    """Every account (all pages), optionally only one network's or one persona's."""
    accounts: list[s.Account] = []
    token = ""
    while True:
        reply = await stub.ListAccounts(
            pb.ListAccountsRequest(
                page_size=PAGE_SIZE, page_token=token, network=network, agent=agent
            )
        )
        accounts.extend(reply.accounts)
        token = reply.next_page_token
        if not token:
            return accounts


async def ensure_operator(stub: rpc.SocialServiceAsyncStub, config: Config) -> s.Account:
    """The sandbox operator account, created (handle "operator") when it does not exist yet."""
    name = f"accounts/{OPERATOR}"
    try:
        return (await stub.GetAccount(pb.GetAccountRequest(name=name))).account
    except grpc.aio.AioRpcError as err:
        if err.code() is not grpc.StatusCode.NOT_FOUND:
            raise
    request = pb.CreateAccountRequest(
        account_id=OPERATOR,
        account=s.Account(
            network=s.NETWORK_SANDBOX, handle=OPERATOR, display_name="Operator", operator=True
        ),
        request_id=f"cli-operator-{uuid.uuid4().hex}",
    )
    try:
        created = await stub.CreateAccount(request, metadata=config.metadata())
    except grpc.aio.AioRpcError as err:
        if err.code() is not grpc.StatusCode.ALREADY_EXISTS:
            raise
        # Created meanwhile by another operator command: read it.
        return (await stub.GetAccount(pb.GetAccountRequest(name=name))).account
    return created.account


async def persona_account(stub: rpc.SocialServiceAsyncStub, persona: str) -> s.Account:
    """The account a persona posts through: one listing agents/{persona}, else accounts/{persona}.

    Raises:
        Failure: Neither exists.
    """
    mine = await list_accounts(stub, agent=f"agents/{persona}")
    if mine:
        return mine[0]
    try:
        return (await stub.GetAccount(pb.GetAccountRequest(name=f"accounts/{persona}"))).account
    except grpc.aio.AioRpcError as err:
        if err.code() is not grpc.StatusCode.NOT_FOUND:
            raise
    raise Failure(
        f"persona {persona!r} has no social account (none lists agents/{persona}, "
        f"and accounts/{persona} does not exist)"
    )


async def _accounts(config: Config, network: str) -> list[s.Account]:
    if network not in NETWORKS:
        raise Failure(f"--network must be one of {', '.join(NETWORKS)}, not {network!r}")
    async with connect(config, "social", SOCIAL) as channel:
        return await list_accounts(rpc.SocialServiceStub(channel), network=NETWORKS[network])


def accounts(config: Config, *, network: str, as_json: bool) -> None:
    """List the social accounts (SocialService.ListAccounts, all pages)."""
    found = run(_accounts(config, network))
    if as_json:
        output.emit_json([output.as_dict(account) for account in found])
        return
    rows = [
        (
            account.name,
            f"@{account.handle}" if account.handle else "-",
            network_name(account.network),
            account.display_name or "-",
            ", ".join(account.agents) or ("operator" if account.operator else "-"),
        )
        for account in found
    ]
    output.show(
        output.table("Accounts", "name", "handle", "network", "display name", "used by", rows=rows)
    )

"""`puppet post` and `puppet mention`: the operator writes on the sandbox network."""

from __future__ import annotations

import re
import uuid

from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc

from puppet_cli import output
from puppet_cli.commands.accounts import OPERATOR, ensure_operator, persona_account
from puppet_cli.config import Config
from puppet_cli.rpc import Failure, abort, connect, run

SOCIAL = pb.DESCRIPTOR.services_by_name["SocialService"]


def with_mention(handle: str, text: str) -> str:
    """`text` starting with `@handle`, unless it already mentions that handle."""
    if re.search(rf"(?<![A-Za-z0-9_])@{re.escape(handle)}(?![A-Za-z0-9_])", text, re.IGNORECASE):
        return text
    return f"@{handle} {text}"


async def _create(
    stub: rpc.SocialServiceAsyncStub, config: Config, account: str, text: str, request_id: str
) -> s.OutboxItem:
    if account == OPERATOR:
        await ensure_operator(stub, config)
    request = pb.CreatePostRequest(parent=f"accounts/{account}", text=text, request_id=request_id)
    return (await stub.CreatePost(request, metadata=config.metadata())).item


async def _post(config: Config, account: str, text: str, request_id: str) -> s.OutboxItem:
    async with connect(config, "social", SOCIAL) as channel:
        return await _create(rpc.SocialServiceStub(channel), config, account, text, request_id)


async def _mention(
    config: Config, persona: str, account: str, text: str, request_id: str
) -> s.OutboxItem:
    async with connect(config, "social", SOCIAL) as channel:
        stub = rpc.SocialServiceStub(channel)
        target = await persona_account(stub, persona)
        if not target.handle:
            raise Failure(f"{target.name} (persona {persona!r}) has no handle to mention yet")
        return await _create(stub, config, account, with_mention(target.handle, text), request_id)


def _report(item: s.OutboxItem, request_id: str, *, as_json: bool) -> None:
    state = s.OutboxState.Name(item.state)
    if item.state in (s.OUTBOX_STATE_FAILED, s.OUTBOX_STATE_REJECTED):
        detail = f"{item.error_reason}: {item.error_message}" if item.error_reason else item.name
        abort(Failure(f"post {state}, {detail} (request id {request_id})"))
    if as_json:
        output.emit_json(output.as_dict(item))
    elif item.state == s.OUTBOX_STATE_SENT:
        output.show(f"sent {', '.join(item.posts)}: {' / '.join(item.texts)}")
    elif item.state == s.OUTBOX_STATE_NEEDS_REVIEW:
        output.show(f"waiting for review: {item.name}")
    elif item.state in (s.OUTBOX_STATE_QUEUED, s.OUTBOX_STATE_APPROVED):
        output.show(f"queued: {item.name}, to be sent at {output.stamp(item.next_attempt_time)}")
    else:
        output.show(f"{state}: {item.name}")


def post(config: Config, text: str, *, account: str, request_id: str | None, as_json: bool) -> None:
    """Post as the operator (or --as another account); the operator account is made if missing."""
    key = request_id or f"cli-{uuid.uuid4().hex}"
    _report(run(_post(config, account, text, key)), key, as_json=as_json)


def mention(
    config: Config,
    persona: str,
    text: str,
    *,
    account: str,
    request_id: str | None,
    as_json: bool,
) -> None:
    """Post as the operator, mentioning the persona's handle so its mention stream gets it."""
    key = request_id or f"cli-{uuid.uuid4().hex}"
    _report(run(_mention(config, persona, account, text, key)), key, as_json=as_json)

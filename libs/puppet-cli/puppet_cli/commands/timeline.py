"""`puppet timeline [--follow]`: the sandbox network's posts (SocialService.ListPosts), live."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import grpc
import typer
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from rich.text import Text

from puppet_cli import output
from puppet_cli.config import Config
from puppet_cli.rpc import connect, run

SOCIAL = pb.DESCRIPTOR.services_by_name["SocialService"]
POLL_PAGE = 100
"""Posts read per poll while following; more new posts than this between polls are skipped."""
REMEMBERED = 10_000
"""Post ids remembered while following, to print each post once."""


def line(post: s.Post) -> Text:
    """`2026-11-27 06:03:04Z  @handle  text` (with `↳ ` for a reply)."""
    text = Text()
    text.append(output.stamp(post.create_time), style="dim")
    text.append("  ")
    text.append(f"@{post.author_handle or post.author_user_id}", style="bold cyan")
    text.append("  ")
    if post.in_reply_to:
        text.append("↳ ", style="dim")
    text.append(post.text)
    return text


class _Printer:
    """Prints posts oldest first, each once, as lines or JSON lines."""

    def __init__(self, *, as_json: bool) -> None:
        self._as_json = as_json
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        self.printed = 0

    def new(self, newest_first: list[s.Post]) -> list[s.Post]:
        return [post for post in reversed(newest_first) if post.name not in self._seen]

    def mark(self, post: s.Post) -> None:
        """Remember the post as shown without printing it."""
        self._seen.add(post.name)
        self._order.append(post.name)
        if len(self._order) > REMEMBERED:
            self._seen.discard(self._order.popleft())

    def emit(self, post: s.Post) -> None:
        self.mark(post)
        if self._as_json:
            output.emit_json_line(output.as_dict(post))
        else:
            output.show(line(post))
        self.printed += 1


async def _page(stub: rpc.SocialServiceAsyncStub, parent: str, size: int) -> list[s.Post]:
    return list((await stub.ListPosts(pb.ListPostsRequest(parent=parent, page_size=size))).posts)


async def _show(config: Config, parent: str, limit: int) -> list[s.Post]:
    async with connect(config, "social", SOCIAL) as channel:
        return await _page(rpc.SocialServiceStub(channel), parent, limit)


async def _follow(
    config: Config, parent: str, *, limit: int, interval_s: float, count: int | None, as_json: bool
) -> None:
    printer = _Printer(as_json=as_json)
    async with connect(config, "social", SOCIAL) as channel:
        stub = rpc.SocialServiceStub(channel)
        # Read as far back as a poll does, so no post older than the first screen shows later.
        first = printer.new(await _page(stub, parent, max(limit, POLL_PAGE)))
        for post in first[:-limit]:
            printer.mark(post)
        for post in first[-limit:]:
            printer.emit(post)
        printer.printed = 0
        unreachable = False
        while count is None or printer.printed < count:
            await asyncio.sleep(interval_s)
            try:
                posts = await _page(stub, parent, POLL_PAGE)
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.UNAVAILABLE:
                    raise
                if not unreachable:
                    output.fail(f"social unreachable at {config.address('social')}; still polling")
                unreachable = True
                continue
            unreachable = False
            for post in printer.new(posts)[: None if count is None else count - printer.printed]:
                printer.emit(post)


def timeline(
    config: Config,
    *,
    account: str | None,
    limit: int,
    follow: bool,
    interval_s: float,
    count: int | None,
    as_json: bool,
) -> None:
    """Show the newest posts, oldest first; with follow, keep printing new ones until Ctrl-C."""
    parent = f"accounts/{account}" if account else "accounts/-"
    if not follow:
        posts = run(_show(config, parent, limit))
        if as_json:
            output.emit_json([output.as_dict(post) for post in posts])
            return
        for post in reversed(posts):
            output.show(line(post))
        return
    with contextlib.suppress(KeyboardInterrupt):
        run(
            _follow(
                config, parent, limit=limit, interval_s=interval_s, count=count, as_json=as_json
            )
        )
    raise typer.Exit(0)

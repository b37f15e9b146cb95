"""First-poll backlog and Mention.depth over the real sandbox network and SQLite store."""

from __future__ import annotations

from pathlib import Path

from puppet_runtime.testing import load_sibling
from puppet_social.mentions import MentionPoller
from puppet_social.network import AccountRef, PostRecord
from puppet_social.network.sandbox import SandboxNetwork
from puppet_social.planner import RatePlanner
from puppet_social.store.sqlite import SqliteStore

conftest = load_sibling(__file__, "conftest")


def _poller(store: SqliteStore, network: SandboxNetwork, **kwargs: int) -> MentionPoller:
    clock = conftest.Clock()
    planner = RatePlanner(store, clock, default_tier="unlimited")
    return MentionPoller(store, network, planner, clock, **kwargs)  # type: ignore[arg-type]


async def _say(
    network: SandboxNetwork, who: AccountRef, text: str, reply_to: str | None = None
) -> PostRecord:
    post = (await network.create_post(who, text, reply_to=reply_to)).post
    assert post is not None
    return post


async def _pair(sandbox: SandboxNetwork) -> tuple[AccountRef, AccountRef]:
    alice = await sandbox.create_account("alice", tier="unlimited")
    bob = await sandbox.create_account("bob", tier="unlimited")
    return alice, bob


async def test_first_poll_delivers_the_newest_backlog_then_only_new_ones(
    sandbox: SandboxNetwork, sqlite_store: SqliteStore
) -> None:
    alice, bob = await _pair(sandbox)
    old = [await _say(sandbox, bob, f"@alice number {n}") for n in range(5)]
    poller = _poller(sqlite_store, sandbox, backlog=3)
    first = await poller.poll_once("alice")
    assert [m.post.id for m in first] == [p.id for p in old[2:]]
    assert await sqlite_store.get_mention_cursor("alice") == old[-1].id
    later = await _say(sandbox, bob, "@alice one more")
    assert [m.post.id for m in await poller.poll_once("alice")] == [later.id]
    # no backlog at all: the first poll only moves the cursor
    nothing = _poller(sqlite_store, sandbox, backlog=0)
    await _say(sandbox, alice, "@bob hi")
    assert await nothing.poll_once("bob") == []
    assert await sqlite_store.get_mention_cursor("bob")


async def test_depth_is_the_reply_chain_depth_up_to_the_cap(
    sandbox: SandboxNetwork, sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    alice, bob = await _pair(sandbox)
    root = await _say(sandbox, bob, "@alice a thread starts")
    chain = [root]
    for n in range(5):
        who = alice if n % 2 == 0 else bob
        chain.append(await _say(sandbox, who, f"@alice @bob reply {n}", reply_to=chain[-1].id))
    # a sibling branch of the same conversation, straight under the root
    side = await _say(sandbox, bob, "@alice a side remark", reply_to=root.id)
    poller = _poller(sqlite_store, sandbox, depth_cap=20)
    got = {m.post.id: m.depth for m in await poller.poll_once("alice")}
    expected = {p.id: depth for depth, p in enumerate(chain) if p.author_id != alice.user_id}
    expected[side.id] = 1
    assert got == expected
    stored = {m.post.id: m.depth for m in await poller.recent("alice", limit=50)}
    assert stored == expected
    # a fresh poller (no memo) with a cap of 2 stops walking at the cap
    other = SqliteStore(tmp_path / "other.sqlite3")
    await other.open()
    try:
        capped = _poller(other, sandbox, depth_cap=2)
        depths = {m.post.id: m.depth for m in await capped.poll_once("alice")}
    finally:
        await other.close()
    assert depths == {pid: min(d, 2) for pid, d in expected.items()}

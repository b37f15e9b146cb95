"""ONE store suite, run over SQLite and over MongoDB through the wire."""

from __future__ import annotations

import asyncio

from puppet_chain.store import (
    ActionRow,
    AuditKind,
    AuditQuery,
    AuditRow,
    ChainStore,
    ReceiptRow,
    Spending,
    State,
    WalletRow,
    new_id,
)


def wallet(wallet_id: str, address: str, agent: str = "agents/a") -> WalletRow:
    return WalletRow(wallet_id, agent, address, b"\x00sealed\xff", 1.5)


def action(request_id: str, now: float, wallet_id: str = "w1") -> ActionRow:
    return ActionRow(
        wallet_id=wallet_id,
        action_id=new_id(now),
        request_id=request_id,
        fingerprint="fp",
        kind="transfer",
        spec={"recipient": "r", "mint": "", "amount": 5},
        requester="operator",
        memo="",
        create_time=now,
        update_time=now,
        state=State.SUBMITTED,
    )


async def test_wallets_are_unique_by_id_and_address(store: ChainStore) -> None:
    assert await store.add_wallet(wallet("w1", "A1"))
    assert not await store.add_wallet(wallet("w1", "A2"))
    assert not await store.add_wallet(wallet("w2", "A1"))
    assert await store.add_wallet(wallet("w2", "A2", agent="agents/b"))
    assert await store.get_wallet("w1") == wallet("w1", "A1")
    assert await store.get_wallet("nope") is None
    assert [w.wallet_id for w in await store.list_wallets("", "", 10)] == ["w1", "w2"]
    assert [w.wallet_id for w in await store.list_wallets("", "w1", 10)] == ["w2"]
    assert [w.wallet_id for w in await store.list_wallets("agents/b", "", 10)] == ["w2"]


async def test_policy_round_trip(store: ChainStore) -> None:
    assert await store.get_policy("w1") is None
    await store.put_policy("w1", {"enabled": True, "allowed_mints": ["m"]})
    await store.put_policy("w1", {"enabled": False, "allowed_mints": []})
    assert await store.get_policy("w1") == {"enabled": False, "allowed_mints": []}


async def test_actions_are_idempotent_per_request_id(store: ChainStore) -> None:
    first = await store.add_action(action("r1", 100.0))
    again = await store.add_action(action("r1", 101.0))
    assert again.action_id == first.action_id
    other_wallet = await store.add_action(action("r1", 102.0, wallet_id="w2"))
    assert other_wallet.action_id != first.action_id
    first.state, first.signature = State.CONFIRMED, "sig"
    first.decision = {"verdict": 1, "reasons": []}
    await store.put_action(first)
    assert await store.get_action("w1", first.action_id) == first
    assert await store.get_action("w2", first.action_id) is None
    assert await store.find_action("w1", "r1") == first
    assert await store.find_action("w1", "r9") is None


async def test_concurrent_adds_keep_one_action(store: ChainStore) -> None:
    rows = await asyncio.gather(*(store.add_action(action("r", 100.0 + i)) for i in range(10)))
    assert len({row.action_id for row in rows}) == 1


async def test_actions_list_newest_first_with_state_filter(store: ChainStore) -> None:
    made = [await store.add_action(action(f"r{i}", 100.0 + i)) for i in range(5)]
    made[1].state = State.PENDING_APPROVAL
    await store.put_action(made[1])
    page = await store.list_actions("w1", None, "", 3)
    assert [a.request_id for a in page] == ["r4", "r3", "r2"]
    rest = await store.list_actions("w1", None, page[-1].action_id, 3)
    assert [a.request_id for a in rest] == ["r1", "r0"]
    pending = await store.list_actions(None, State.PENDING_APPROVAL, "", 10)
    assert [a.request_id for a in pending] == ["r1"]
    assert [a.request_id for a in await store.actions_since("w1", 103.0)] == ["r3", "r4"]


async def test_audit_is_append_only_ordered_and_filtered(store: ChainStore) -> None:
    kinds = [AuditKind.REQUESTED, AuditKind.DECIDED, AuditKind.SUBMITTED]
    made = [
        await store.append_audit(
            AuditRow("w1" if i != 1 else "w2", kind, 10.0 + i, "operator", action=f"a{i % 2}")
        )
        for i, kind in enumerate(kinds)
    ]
    assert [e.seq for e in made] == sorted({e.seq for e in made})
    everything = await store.list_audit(AuditQuery(), 0, 10)
    assert [e.kind for e in everything] == kinds
    assert [e.seq for e in await store.list_audit(AuditQuery("w1"), 0, 10)] == [
        made[0].seq,
        made[2].seq,
    ]
    assert len(await store.list_audit(AuditQuery(), made[0].seq, 10)) == 2
    assert len(await store.list_audit(AuditQuery(action="a0"), 0, 10)) == 2
    window = await store.list_audit(AuditQuery(start_time=11.0, end_time=12.0), 0, 10)
    assert [e.seq for e in window] == [made[1].seq]


async def test_receipts(store: ChainStore) -> None:
    for i in range(3):
        await store.add_receipt(
            ReceiptRow(
                "w1",
                f"r{i}",
                f"wallets/w1/actions/a{i}",
                "sig",
                7,
                1.0,
                {"mint": "m", "amount": 5},
                {},
                0.0,
                5000,
                "bob",
            )
        )
    got = await store.get_receipt("w1", "r1")
    assert got is not None
    assert got.amount_in == {"mint": "m", "amount": 5}
    assert await store.get_receipt("w2", "r1") is None
    assert [r.receipt_id for r in await store.list_receipts("w1", "", 2)] == ["r2", "r1"]
    assert [r.receipt_id for r in await store.list_receipts(None, "r1", 5)] == ["r0"]


async def test_remember_keeps_the_first(store: ChainStore) -> None:
    assert await store.recall("k") is None
    assert await store.remember("k", "fp1", "one") == ("fp1", "one")
    assert await store.remember("k", "fp2", "two") == ("fp1", "one")
    assert await store.recall("k") == ("fp1", "one")


async def test_spending_counts_spending_states_since_a_time(store: ChainStore) -> None:
    rows = [await store.add_action(action(f"s{i}", 100.0 + i)) for i in range(4)]
    for row, state, lamports in zip(
        rows,
        [State.CONFIRMED, State.DENIED, State.PENDING_APPROVAL, State.SUBMITTED],
        [10, 20, 30, 40],
        strict=True,
    ):
        row.state, row.decision = state, {"value_lamports": lamports, "value_usd": lamports / 10}
        await store.put_action(row)
    assert await store.spending("w1", 0.0, "") == Spending(80, 8.0, 3, 103.0)
    assert await store.spending("w1", 101.0, rows[3].action_id) == Spending(30, 3.0, 1, 102.0)
    assert await store.spending("w2", 0.0, "") == Spending(0, 0.0, 0, None)


async def test_leases_exclude_other_owners_until_they_lapse(store: ChainStore) -> None:
    assert await store.acquire("k", "a", 100.0, 10.0)
    assert await store.acquire("k", "a", 101.0, 10.0)
    assert not await store.acquire("k", "b", 105.0, 10.0)
    assert await store.acquire("k", "b", 111.5, 10.0)
    await store.release("k", "a")
    assert not await store.acquire("k", "a", 112.0, 10.0)
    await store.release("k", "b")
    assert await store.acquire("k", "a", 112.0, 10.0)

"""A send whose answer is lost: the action stays SUBMITTED, then reconciles; it spends once.

A small JSON-RPC proxy in front of the local Solana loses the answer to the first
sendTransaction (after forwarding it, or without forwarding it).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_chain.localnet import Embedded, embedded
from puppet_runtime.local_http import LocalHttpServer, Request, Response
from puppet_runtime.testing import load_sibling, status_of

kit = load_sibling(__file__, "kit")
SOL, BOB = kit.SOL, kit.BOB


class LossyProxy:
    """Forwards JSON-RPC to upstream; the first sendTransaction answer is replaced by a 500."""

    def __init__(self, upstream: str, *, forward_lost: bool) -> None:
        self.lost = 0
        self._upstream = upstream
        self._forward_lost = forward_lost
        self._http = LocalHttpServer(self._answer, name="lossy-proxy")
        self.url = self._http.start()

    def _answer(self, request: Request) -> Response:
        lose = b'"sendTransaction"' in request.body and self.lost == 0
        answer = b""
        if not lose or self._forward_lost:
            forward = urllib.request.Request(
                self._upstream, request.body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(forward, timeout=5) as resp:
                answer = resp.read()
        if lose:
            self.lost += 1
            return Response(500, b'{"error":"lost"}')
        return Response(200, answer)

    def close(self) -> None:
        self._http.stop()


@pytest.fixture
def local() -> Iterator[Embedded]:
    with embedded() as started:
        yield started


@pytest.mark.parametrize("forward_lost", [True, False], ids=["landed", "dropped"])
async def test_a_lost_send_answer_reconciles_and_spends_once(
    tmp_path: Path, local: Embedded, forward_lost: bool
) -> None:
    proxy = LossyProxy(local.rpc_url, forward_lost=forward_lost)
    try:
        async with kit.serve(tmp_path, rpc_url=proxy.url, jupiter_url=local.jupiter_url) as h:
            await kit.funded(h)
            await kit.set_policy(h, enabled=True, allowed_recipients=[str(BOB)])
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await h.stub.CreateTransfer(kit.transfer(SOL, "lost"))
            code, info, _ = status_of(caught.value)
            assert (code, info.reason if info else "") == (
                grpc.StatusCode.UNAVAILABLE,
                "RPC_UNAVAILABLE",
            )
            listed = await h.stub.ListActions(pb.ListActionsRequest(parent="wallets/w1"))
            (pending,) = listed.actions
            assert pending.state == c.ACTION_STATE_SUBMITTED
            assert pending.signature
            assert local.solana.balance(BOB) == (SOL if forward_lost else 0)
            got = (await h.stub.GetAction(pb.GetActionRequest(name=pending.name))).action
            assert got.state == c.ACTION_STATE_CONFIRMED
            assert got.signature == pending.signature
            again = (await h.stub.CreateTransfer(kit.transfer(SOL, "lost"))).action
            assert (again.name, again.state) == (pending.name, c.ACTION_STATE_CONFIRMED)
            assert local.solana.balance(BOB) == SOL
    finally:
        proxy.close()

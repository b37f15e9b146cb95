"""A send whose answer is lost: the action stays SUBMITTED, then reconciles; it spends once.

A small JSON-RPC proxy in front of the local Solana loses the answer to the first
sendTransaction (after forwarding it, or without forwarding it).
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_chain.localnet import Embedded, embedded
from puppet_runtime.testing import load_sibling, status_of

kit = load_sibling(__file__, "kit")
SOL, BOB = kit.SOL, kit.BOB


class LossyProxy:
    """Forwards JSON-RPC to upstream; the first sendTransaction answer is replaced by a 500."""

    def __init__(self, upstream: str, *, forward_lost: bool) -> None:
        self.lost = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sending = b'"sendTransaction"' in body
                lose = sending and proxy.lost == 0
                answer = b""
                if not lose or forward_lost:
                    request = urllib.request.Request(
                        upstream, body, {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(request, timeout=5) as resp:
                        answer = resp.read()
                if lose:
                    proxy.lost += 1
                    self.send_response(500)
                    answer = b'{"error":"lost"}'
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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

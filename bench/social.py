"""Social service benchmark: posts through gRPC and the durable outbox onto the sandbox network.

Runs `python -m puppet_social` as a subprocess (sandbox network, SQLite store, every account on
the "unlimited" tier so no simulated rate limit applies) and drives it over a real gRPC channel.
The last line printed is one JSON object of figures:

- `sandbox_posts_per_s`: CreatePost calls (each a new request_id, so each a new outbox row) that
  came back SENT, divided by the wall time of the whole run; `concurrency` calls in flight from
  one client, spread over `accounts` sandbox accounts. Every call writes the outbox row, claims
  it (queued -> sending), posts to the sandbox network and records sent, before it answers.
- `outbox_p99_ms`: the p99 of the client-observed latency of one CreatePost with one call in
  flight (accept: validate, durable outbox row, first send attempt, sent), over `latency_calls`
  sequential calls on an otherwise idle server.
- `replay_p50_ms`: a CreatePost repeated with a request_id already sent (the idempotent path:
  the first item is returned, nothing is posted again); `replays_reposted` must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from embed import cpu_model

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port, wait_serving


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def post(account: int, i: int, key: str) -> pb.CreatePostRequest:
    return pb.CreatePostRequest(
        parent=f"accounts/p{account}",
        text=f"bench {key} from persona {account}: the market is a mood ring #{i % 97}",
        agent=f"agents/p{account}",
        request_id=key,
    )


async def throughput(
    stub: SocialServiceAsyncStub, posts: int, accounts: int, concurrency: int
) -> tuple[float, int]:
    queue = iter(range(posts))
    sent = 0

    async def worker() -> None:
        nonlocal sent
        for i in queue:
            reply = await stub.CreatePost(post(i % accounts, i, f"t-{i}"), timeout=30)
            sent += reply.item.state == s.OUTBOX_STATE_SENT

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent / (time.perf_counter() - started), sent


async def latencies(
    stub: SocialServiceAsyncStub, calls: int, accounts: int, prefix: str
) -> list[float]:
    timings = []
    for i in range(calls):
        request = post(i % accounts, i, f"{prefix}-{i}")
        started = time.perf_counter()
        reply = await stub.CreatePost(request, timeout=10)
        timings.append((time.perf_counter() - started) * 1000)
        assert reply.item.state == s.OUTBOX_STATE_SENT, reply.item
    return timings


async def settled(stub: SocialServiceAsyncStub) -> None:
    """Wait until no item is queued or sending (the worker sends what the calls did not)."""
    for _ in range(600):
        busy = 0
        for state in (s.OUTBOX_STATE_QUEUED, s.OUTBOX_STATE_SENDING):
            page = await stub.ListOutboxItems(
                pb.ListOutboxItemsRequest(parent="accounts/-", state=state, page_size=1)
            )
            busy += len(page.items)
        if not busy:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("outbox never drained")


async def timeline_size(stub: SocialServiceAsyncStub) -> int:
    total, token = 0, ""
    while True:
        page = await stub.ListPosts(
            pb.ListPostsRequest(parent="accounts/-", page_size=500, page_token=token), timeout=30
        )
        total += len(page.posts)
        token = page.next_page_token
        if not token:
            return total


async def main(
    posts: int, accounts: int, concurrency: int, latency_calls: int, profile: str = ""
) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="bench-social-"))
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_SOCIAL_PORT": str(port),
        "PUPPET_SOCIAL_DATA_DIR": str(data),
        "PUPPET_SOCIAL_LOG_LEVEL": "WARNING",
        "PUPPET_SOCIAL_NETWORK": "sandbox",
        "PUPPET_SOCIAL_DEFAULT_TIER": "unlimited",
        "PUPPET_SOCIAL_MENTION_POLL_INTERVAL_S": "3600",
    }
    prof = ["-m", "cProfile", "-o", profile] if profile else []
    server = await asyncio.create_subprocess_exec(
        sys.executable, *prof, "-m", "puppet_social", env=env
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, timeout_s=60)
            stub = rpc.SocialServiceStub(channel)
            for n in range(accounts):
                await stub.CreateAccount(
                    pb.CreateAccountRequest(
                        account_id=f"p{n}",
                        account=s.Account(
                            network=s.NETWORK_SANDBOX, handle=f"persona{n}", agents=[f"agents/p{n}"]
                        ),
                    )
                )
            await latencies(stub, 20, accounts, "warm")
            single = await latencies(stub, latency_calls, accounts, "lat")
            rate, sent = await throughput(stub, posts, accounts, concurrency)
            await settled(stub)
            before = await timeline_size(stub)
            replays = []
            for i in range(0, posts, max(posts // 200, 1)):
                started = time.perf_counter()
                again = await stub.CreatePost(post(i % accounts, i, f"t-{i}"), timeout=10)
                replays.append((time.perf_counter() - started) * 1000)
                assert again.item.state == s.OUTBOX_STATE_SENT
            reposted = await timeline_size(stub) - before
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
    return {
        "posts": posts,
        "accounts": accounts,
        "concurrency": concurrency,
        "sent": sent,
        "sandbox_posts_per_s": round(rate),
        "outbox_p50_ms": round(statistics.median(single), 2),
        "outbox_p99_ms": round(percentile(single, 99), 2),
        "replay_p50_ms": round(statistics.median(replays), 2),
        "replays_reposted": reposted,
        "server_exit_code": server.returncode,
        "machine": f"{os.cpu_count()} cpu, {cpu_model()}",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=5_000)
    parser.add_argument("--accounts", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument("--profile", default="", help="write the server's cProfile stats here")
    args = parser.parse_args()
    figures = asyncio.run(
        main(args.posts, args.accounts, args.concurrency, args.latency_calls, args.profile)
    )
    print(json.dumps(figures))

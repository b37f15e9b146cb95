"""post, mention, timeline and accounts through the wire against a real sandbox social service."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb


async def timeline_texts(social) -> list[str]:
    reply = await social.stub.ListPosts(pb.ListPostsRequest(parent="accounts/-"))
    return [post.text for post in reply.posts]


async def test_post_creates_the_operator_account_once_and_sends(social, cli) -> None:
    first = await cli("post", "gm from the operator")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("sent accounts/operator/posts/")
    second = await cli("post", "second word", "--json")
    assert second.exit_code == 0, second.output
    item = json.loads(second.stdout)
    assert item["state"] == "OUTBOX_STATE_SENT"
    assert item["texts"] == ["second word"]
    account = (await social.stub.GetAccount(pb.GetAccountRequest(name="accounts/operator"))).account
    assert account.operator
    assert account.handle == "operator"
    assert account.network == s.NETWORK_SANDBOX
    assert await timeline_texts(social) == ["second word", "gm from the operator"]


async def test_post_with_the_same_request_id_posts_once(social, cli) -> None:
    for _ in range(2):
        done = await cli("post", "only once", "--request-id", "op-1")
        assert done.exit_code == 0, done.output
    assert await timeline_texts(social) == ["only once"]


async def test_post_as_another_account(social, cli) -> None:
    await social.sandbox_account("coby", "coby_x", "agents/coby")
    done = await cli("post", "I am coby", "--as", "coby")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("sent accounts/coby/posts/")
    listed = await social.stub.ListAccounts(pb.ListAccountsRequest())
    assert [a.name for a in listed.accounts] == ["accounts/coby"]  # no operator made


async def test_mention_reaches_the_persona_mentions(social, cli) -> None:
    await social.sandbox_account("coby", "coby_x", "agents/coby")
    done = await cli("mention", "coby", "what do you think of tea?")
    assert done.exit_code == 0, done.output
    assert "@coby_x what do you think of tea?" in done.stdout
    deadline = time.monotonic() + 10
    while True:
        reply = await social.stub.ListMentions(pb.ListMentionsRequest(parent="accounts/coby"))
        if reply.mentions or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [m.post.text for m in reply.mentions] == ["@coby_x what do you think of tea?"]
    assert reply.mentions[0].post.author_handle == "operator"


async def test_mention_finds_the_account_named_after_the_persona(social, cli) -> None:
    await social.sandbox_account("dana", "dana_d")  # no agents listed: accounts/{persona}
    done = await cli("mention", "dana", "hi @DANA_D, already mentioned", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["texts"] == ["hi @DANA_D, already mentioned"]


async def test_mention_of_a_persona_without_account_is_one_line(social, cli) -> None:
    done = await cli("mention", "nobody", "hello?")
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines() == [
        "error: persona 'nobody' has no social account (none lists agents/nobody, "
        "and accounts/nobody does not exist)"
    ]
    assert await timeline_texts(social) == []


async def test_timeline_shows_posts_oldest_first(social, cli) -> None:
    await social.sandbox_account("coby", "coby_x", "agents/coby")
    for index, account in enumerate(["coby", "operator", "coby"]):
        done = await cli("post", f"post {index}", "--as", account)
        assert done.exit_code == 0, done.output
    shown = await cli("timeline")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert [line.split("  ", 2)[1:] for line in lines] == [
        ["@coby_x", "post 0"],
        ["@operator", "post 1"],
        ["@coby_x", "post 2"],
    ]
    only = await cli("timeline", "--account", "coby", "--limit", "1", "--json")
    assert only.exit_code == 0, only.output
    posts = json.loads(only.stdout)
    assert [(p["text"], p["authorHandle"]) for p in posts] == [("post 2", "coby_x")]


async def test_timeline_follow_prints_new_posts_once_in_order(social, cli) -> None:
    await social.sandbox_account("coby", "coby_x", "agents/coby")
    for text in ("older news", "old news"):
        await social.stub.CreatePost(
            pb.CreatePostRequest(parent="accounts/coby", text=text, request_id=text)
        )
    follow = asyncio.create_task(
        cli("timeline", "--follow", "--limit=1", "--count=2", "--interval=0.05", "--json")
    )
    index = 0
    while not follow.done():  # post until the follower has printed two new posts
        await social.stub.CreatePost(
            pb.CreatePostRequest(
                parent="accounts/coby", text=f"live {index}", request_id=f"l{index}"
            )
        )
        index += 1
        await asyncio.wait({follow}, timeout=0.2)
    done = follow.result()
    assert done.exit_code == 0, done.output
    texts = [json.loads(line)["text"] for line in done.stdout.splitlines()]
    first, *new = texts  # first screen (--limit 1): the newest post when the follower started
    n = int(new[0].removeprefix("live "))
    assert new == [f"live {n}", f"live {n + 1}"]
    assert first == ("old news" if n == 0 else f"live {n - 1}")  # never "older news"


async def test_accounts_table_and_json(social, cli) -> None:
    await social.sandbox_account("coby", "coby_x", "agents/coby")
    assert (await cli("post", "make the operator")).exit_code == 0
    table = await cli("accounts")
    assert table.exit_code == 0, table.output
    assert "accounts/coby" in table.stdout
    assert "@coby_x" in table.stdout
    assert "agents/coby" in table.stdout
    assert "accounts/operator" in table.stdout
    listed = await cli("accounts", "--network", "sandbox", "--json")
    assert listed.exit_code == 0, listed.output
    found = {a["name"]: a for a in json.loads(listed.stdout)}
    assert sorted(found) == ["accounts/coby", "accounts/operator"]
    assert found["accounts/operator"]["operator"] is True
    assert found["accounts/coby"]["agents"] == ["agents/coby"]
    none = await cli("accounts", "--network", "x", "--json")
    assert json.loads(none.stdout) == []


async def test_timeline_follow_stops_cleanly_on_ctrl_c(social, cli) -> None:
    assert (await cli("post", "before the follower")).exit_code == 0
    follower = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "puppet_cli",
        f"--social-addr={social.address}",
        "timeline",
        "--follow",
        "--interval=0.05",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert follower.stdout is not None
    first = await asyncio.wait_for(follower.stdout.readline(), timeout=30)
    assert first.decode().rstrip().endswith("@operator  before the follower")
    assert (await cli("post", "while following")).exit_code == 0
    second = await asyncio.wait_for(follower.stdout.readline(), timeout=30)
    assert second.decode().rstrip().endswith("@operator  while following")
    follower.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(follower.communicate(), timeout=30)
    assert follower.returncode == 0
    assert stderr.decode() == ""

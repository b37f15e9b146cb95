"""python -m puppet_llm as a real process: env settings, health, an RPC, SIGTERM -> exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
from puppet.llm.v1 import llm_pb2 as m
from puppet.llm.v1 import llm_service_pb2 as pb
from puppet.llm.v1 import llm_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port, status_of, wait_serving

KEY = "xai-secret-never-logged"


async def test_the_process_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_LLM_PORT": str(port),
        "PUPPET_LLM_DATA_DIR": str(tmp_path),
        "PUPPET_LLM_PROVIDER": "grok",
        "PUPPET_LLM_GROK_API_KEY": KEY,
        "PUPPET_LLM_GROK_BASE_URL": "http://127.0.0.1:9/v1",
        "PUPPET_LLM_CALL_TIMEOUT_S": "1",
        "PUPPET_LLM_DRAIN_S": "0",
        "PUPPET_LLM_LOG_FORMAT": "text",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "puppet_llm",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, "puppet.llm.v1.LlmService", timeout_s=60)
            stub = rpc.LlmServiceStub(channel)
            persona = m.Persona(agent="agents/p1", display_name="P")
            rendered = await stub.RenderPrompt(pb.RenderPromptRequest(persona=persona))
            assert rendered.prompt.provider == m.PROVIDER_GROK
            assert rendered.prompt.model == "grok-3-mini"
            try:
                await stub.ComposePost(pb.ComposePostRequest(persona=persona), timeout=10)
                raise AssertionError("no grok server listens on port 9")
            except grpc.aio.AioRpcError as err:
                code, info, _ = status_of(err)
            assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION)
            assert info is not None
            assert info.metadata["provider"] == "grok"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, output.decode()[-2000:]
    assert KEY not in output.decode()

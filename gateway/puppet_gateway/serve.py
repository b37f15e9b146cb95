"""Run the gateway in the foreground: settings from the environment, then exec Envoy."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from puppet_gateway.config import GatewaySettings
from puppet_gateway.descriptors import write_descriptor_set
from puppet_gateway.envoy import Envoy

log = logging.getLogger(__name__)


def prepare(env: dict[str, str] | None = None) -> Envoy:
    """Write the descriptor set, the bootstrap and (if absent) the runtime layer.

    `PUPPET_GATEWAY_DATA_DIR` (default data/gateway) holds envoy.yaml, runtime/ and the
    access log; `PUPPET_GATEWAY_DESCRIPTOR` (default build/gateway/agent.binpb) the descriptor;
    `PUPPET_GATEWAY_RUNTIME_ROOT` (default <data>/runtime/current) is the weights layer: on
    Kubernetes, `<ConfigMap mount>/..data`, which kubelet swaps atomically on every update.
    """
    env = dict(os.environ) if env is None else env
    data = Path(env.get("PUPPET_GATEWAY_DATA_DIR", "data/gateway")).resolve()
    descriptor = Path(env.get("PUPPET_GATEWAY_DESCRIPTOR", "build/gateway/agent.binpb")).resolve()
    write_descriptor_set(descriptor)
    runtime = Path(env.get("PUPPET_GATEWAY_RUNTIME_ROOT", data / "runtime" / "current"))
    settings = GatewaySettings.from_env(env, runtime_root=runtime, descriptor=descriptor)
    settings = settings.with_access_log(
        Path(env.get("PUPPET_GATEWAY_ACCESS_LOG", data / "access.log"))
    )
    envoy = Envoy(settings, data)
    envoy.write_config()
    return envoy


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    envoy = prepare()
    log.info("envoy on %s (admin %s), config %s", envoy.url, envoy.admin_url, envoy.config_path)
    command = envoy.command()
    os.execv(command[0], command)  # Envoy gets our PID, and with it SIGTERM from the parent

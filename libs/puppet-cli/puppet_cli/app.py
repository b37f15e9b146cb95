"""The `puppet` typer app: global options, every command, and the `canary` group when present."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Annotated

import typer

from puppet_cli.commands import accounts, events, personas, posting, status, timeline
from puppet_cli.config import Config, default_address

log = logging.getLogger(__name__)

app = typer.Typer(
    name="puppet",
    help="Operate the Puppet Engine suite: status, personas, the sandbox timeline, posts, events.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
RequestId = Annotated[
    str | None,
    typer.Option(help="Idempotency key; repeat a call with the same key to do it at most once."),
]


def _address_option(service: str) -> object:
    return typer.Option(
        f"--{service}-addr",
        envvar=f"PUPPET_CLI_{service.upper()}_ADDR",
        help=f"host:port of the {service} service.",
    )


@app.callback()
def options(
    ctx: typer.Context,
    agent: Annotated[str, _address_option("agent")] = default_address("agent"),
    memory: Annotated[str, _address_option("memory")] = default_address("memory"),
    llm: Annotated[str, _address_option("llm")] = default_address("llm"),
    social: Annotated[str, _address_option("social")] = default_address("social"),
    chain: Annotated[str, _address_option("chain")] = default_address("chain"),
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", envvar="PUPPET_CLI_TIMEOUT_S", min=0.1, help="Deadline of each call, s."
        ),
    ] = 10.0,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="PUPPET_CLI_ADMIN_TOKEN",
            help="Sent as 'authorization: Bearer <token>' (operator posts need it when the "
            "social service has an admin token).",
        ),
    ] = None,
) -> None:
    """Addresses default to `python3 dev.py up`'s: 127.0.0.1, agent 50051 ... chain 50055."""
    addresses = {"agent": agent, "memory": memory, "llm": llm, "social": social, "chain": chain}
    ctx.obj = Config(addresses=addresses, timeout_s=timeout, admin_token=admin_token)


def _config(ctx: typer.Context) -> Config:
    config = ctx.find_object(Config)
    assert config is not None  # set by options()
    return config


@app.command("status")
def status_command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Health of every service (exit 1 unless all serve) and the agent's status."""
    raise typer.Exit(status.status(_config(ctx), as_json=as_json))


@app.command("personas")
def personas_command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the personas (AgentService.ListAgents)."""
    personas.personas(_config(ctx), as_json=as_json)


@app.command("persona")
def persona_command(
    ctx: typer.Context,
    persona_id: Annotated[str, typer.Argument(metavar="ID", help="The persona id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one persona (AgentService.GetAgent)."""
    personas.persona(_config(ctx), persona_id, as_json=as_json)


@app.command("force-post")
def force_post_command(
    ctx: typer.Context,
    persona_id: Annotated[str, typer.Argument(metavar="PERSONA", help="The persona id.")],
    topic: Annotated[str, typer.Option(help="What to post about.")] = "",
    request_id: RequestId = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a persona post now, even if it posted recently (AgentService.CreatePost, force)."""
    personas.force_post(
        _config(ctx), persona_id, topic=topic, request_id=request_id, as_json=as_json
    )


@app.command("event")
def event_command(
    ctx: typer.Context,
    event_type: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="news, mood_shift, interaction_prompt or custom."),
    ],
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="Persona id to target (repeat); none means all."),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", help="key=value (repeat); JSON values keep their type."),
    ] = None,
    delay: Annotated[str | None, typer.Option(help="Fire later: 500ms, 30s, 5m, 2h, 1d.")] = None,
    priority: Annotated[str, typer.Option(help="critical, high, normal or low.")] = "",
    request_id: RequestId = None,
    as_json: JsonFlag = False,
) -> None:
    """Inject an event (AgentService.CreateEvent)."""
    events.event(
        _config(ctx),
        event_type,
        targets=target or [],
        data=data or [],
        delay=delay,
        priority=priority,
        request_id=request_id,
        as_json=as_json,
    )


@app.command("timeline")
def timeline_command(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new posts until Ctrl-C.")
    ] = False,
    account: Annotated[
        str | None, typer.Option(help="Only this account's posts (its id, e.g. operator).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Newest posts to show.")] = 20,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls with --follow.")
    ] = 2.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="With --follow, stop after this many new posts.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The sandbox timeline (SocialService.ListPosts), oldest first; --follow for live."""
    timeline.timeline(
        _config(ctx),
        account=account,
        limit=limit,
        follow=follow,
        interval_s=interval,
        count=count,
        as_json=as_json,
    )


@app.command("post")
def post_command(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The text, up to 280 weighted characters.")],
    account: Annotated[
        str, typer.Option("--as", help="Posting account id; 'operator' is made when missing.")
    ] = accounts.OPERATOR,
    request_id: RequestId = None,
    as_json: JsonFlag = False,
) -> None:
    """Post on the network as the operator (SocialService.CreatePost)."""
    posting.post(_config(ctx), text, account=account, request_id=request_id, as_json=as_json)


@app.command("mention")
def mention_command(
    ctx: typer.Context,
    persona_id: Annotated[str, typer.Argument(metavar="PERSONA", help="The persona id.")],
    text: Annotated[str, typer.Argument(help="The text; '@handle ' is put in front.")],
    account: Annotated[
        str, typer.Option("--as", help="Posting account id; 'operator' is made when missing.")
    ] = accounts.OPERATOR,
    request_id: RequestId = None,
    as_json: JsonFlag = False,
) -> None:
    """Post as the operator, mentioning a persona's handle (it lands in its mentions)."""
    posting.mention(
        _config(ctx), persona_id, text, account=account, request_id=request_id, as_json=as_json
    )


@app.command("accounts")
def accounts_command(
    ctx: typer.Context,
    network: Annotated[str, typer.Option(help="sandbox, x or all.")] = "all",
    as_json: JsonFlag = False,
) -> None:
    """List the social accounts (SocialService.ListAccounts)."""
    accounts.accounts(_config(ctx), network=network, as_json=as_json)


def mount_canary(root: typer.Typer) -> bool:
    """Add `puppet_gateway.cli:app` as the `canary` group when that module is installed.

    Imported here, not at the top, so the CLI works without the gateway package; a gateway
    that fails to import is logged and left out rather than breaking every command.
    """
    try:
        if importlib.util.find_spec("puppet_gateway.cli") is None:
            return False
        module = importlib.import_module("puppet_gateway.cli")
    except ImportError as err:
        log.warning("puppet canary is unavailable: %s", err)
        return False
    canary = getattr(module, "app", None)
    if not isinstance(canary, typer.Typer):
        log.warning("puppet canary is unavailable: puppet_gateway.cli has no typer app 'app'")
        return False
    root.add_typer(canary, name="canary")
    return True


mount_canary(app)


def main() -> None:
    """Entry point of the `puppet` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()

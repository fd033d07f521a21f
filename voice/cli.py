"""`flask numbers` and `flask agents`: the directory's operations from the command line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from pydantic import BaseModel

from core import instance
from core.extensions import TWILIO
from core.instance import RunInfo
from directory.models import (
    Agent,
    AgentConfig,
    AgentList,
    AgentRole,
    AgentStatus,
    CallerIdTrust,
    Number,
    NumberConfig,
    NumberList,
)
from directory.service import (
    DIRECTORY,
    Applied,
    ConfigFile,
    DirectoryError,
    checked_agent_id,
    checked_number,
    read_file,
    validated,
)
from voice.sync import SyncReport, sync_number
from voice.twilio_client import make_client

numbers_cli = AppGroup("numbers", help="Configure support numbers and point them at Threadline.")
agents_cli = AppGroup("agents", help="Configure the agents who answer support numbers.")

_CLI_FORCE = "Sync again with --force to detach it."
_FILE_HELP = "a JSON (.json) or YAML file with the fields; options given override it"


class Removed(BaseModel):
    """What `remove` took away."""

    removed: str


def merged(model: type[BaseModel], stored: BaseModel | None, file: str | None, options: dict[str, Any]) -> Any:
    """model validated from the file (else the stored record's fields) with the options given set over it."""
    if file:
        base = read_file(file, "--file")
    elif stored is not None:
        base = stored.model_dump(mode="json", include=set(model.model_fields))
    else:
        base = {}
    return validated(model, {**base, **{name: value for name, value in options.items() if value is not None}})


def _one_line(error: DirectoryError) -> str:
    if error.field and not error.message.startswith(error.field):
        return f"{error.field}: {error.message}"
    return error.message


def reports(command: Callable[..., BaseModel]) -> Callable[..., None]:
    """Print the command's result as JSON; a DirectoryError becomes `error: <field>: <why>` and exit code 1."""

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        try:
            result = command(**kwargs)
        except DirectoryError as exc:
            click.echo(f"error: {_one_line(exc)}", err=True)
            raise click.exceptions.Exit(1) from None
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))

    return run


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows in columns as wide as their widest cell, under a header line."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [headers, *rows])


def listing(result: BaseModel, as_json: bool, headers: list[str], rows: list[list[str]], empty: str) -> None:
    """Print a list for people (a table, or a sentence when there is nothing), or as JSON for scripts."""
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        click.echo(table(headers, rows) if rows else empty)


_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="print JSON, for scripts")


@numbers_cli.command("list")
@_JSON_OPTION
def list_numbers(as_json: bool) -> None:
    """List the configured support numbers."""
    numbers = DIRECTORY.get().numbers.all()
    rows = [[n.number, n.label, n.brand, n.time_zone, ", ".join(n.agents) or "nobody",
             "recorded" if n.record_calls else "not recorded"] for n in numbers]
    listing(NumberList(numbers=numbers), as_json, ["Number", "Label", "Brand", "Time zone", "Agents", "Calls"],
            rows, "No support numbers yet: add one with `flask numbers set`.")


@numbers_cli.command("show")
@click.argument("number")
@reports
def show_number(number: str) -> Number:
    """Show one support number's configuration."""
    return DIRECTORY.get().number(checked_number(number))


@numbers_cli.command("set")
@click.argument("number")
@click.option("--file", "file", metavar="PATH", help=_FILE_HELP)
@click.option("--label")
@click.option("--brand", help="the name callers hear")
@click.option("--language", help="the main language, such as en-US")
@click.option("--time-zone", help="an IANA zone, such as America/New_York")
@click.option("--agent", "agents", multiple=True, metavar="ID", help="an agent who answers (repeat; replaces the list)")
@click.option("--caller-id", help="the number shown when Threadline calls out")
@click.option("--caller-id-trust", type=click.Choice([t.value for t in CallerIdTrust]),
              help="attested: greet callers by name only when their carrier verified their number")
@click.option("--record-calls/--no-record-calls", default=None)
@click.option("--survey/--no-survey", default=None, help="after the agent hangs up, ask the customer to rate the call")
@click.option("--max-attempts", type=int)
@reports
def set_number(number: str, file: str | None, agents: tuple[str, ...], **options: Any) -> Number:
    """Create or change a support number: from --file, else its stored configuration, with the options over it."""
    e164 = checked_number(number)
    stored = DIRECTORY.get().numbers.get(e164)
    config = merged(NumberConfig, stored, file, {**options, "agents": list(agents) or None})
    return DIRECTORY.get().set_number(e164, config)[0]


@numbers_cli.command("apply")
@click.option("--file", "file", metavar="PATH", required=True,
              help='a JSON or YAML file: {"agents": {ID: {...}}, "numbers": {NUMBER: {...}}}')
@reports
def apply_file(file: str) -> Applied:
    """Write a whole configuration, agents first; nothing is written unless all of it is valid."""
    return DIRECTORY.get().apply(validated(ConfigFile, read_file(file, "--file")))


@numbers_cli.command("remove")
@click.argument("number")
@reports
def remove_number(number: str) -> Removed:
    """Remove a support number's configuration."""
    e164 = checked_number(number)
    DIRECTORY.get().remove_number(e164)
    return Removed(removed=e164)


@numbers_cli.command("sync")
@click.argument("number")
@click.option("--force", is_flag=True, help="detach the number from a TwiML App or SIP trunk (while it is attached "
                                             "to one, Twilio never calls its Voice URL)")
@reports
def sync_command(number: str, force: bool) -> SyncReport:
    """Point the Twilio number's Voice URL and status callback at PUBLIC_BASE_URL (beside bin/run: its carrier's)."""
    e164 = checked_number(number)
    run = _beside_a_local_carrier()
    if run is None or run.carrier is None:
        return sync_number(e164, force, _CLI_FORCE)
    real = "sync is for a real Twilio number: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL"
    if e164 != run.carrier.number:
        raise DirectoryError(404, "not_found", f"bin/run's local carrier has only the number "
                             f"{run.carrier.number}; {real}", "number")
    report = sync_number(e164, force, _CLI_FORCE)
    click.echo(f"bin/run ({run.describe()}) plays Twilio with a local carrier, and it already points the demo number "
               f"{e164} at Threadline (this sync ran against that carrier). {real[0].upper()}{real[1:]}.", err=True)
    return report


def _beside_a_local_carrier() -> RunInfo | None:
    """The bin/run on this data dir if it plays Twilio with a local carrier and no account is set here: use its."""
    if TWILIO.get() is not None:
        return None
    run = instance.running(current_app.config["VAR_DIR"])
    if run is None or run.carrier is None or not run.web:
        return None
    carrier = run.carrier
    TWILIO.install(current_app, make_client(carrier.account_sid, carrier.auth_token, carrier.url))
    current_app.config["PUBLIC_BASE_URL"] = run.web  # where the run points the demo number
    return run


@agents_cli.command("list")
@_JSON_OPTION
def list_agents(as_json: bool) -> None:
    """List the agents."""
    agents = DIRECTORY.get().agents.all()
    rows = [[a.id, a.name, a.status.value, a.role.value,
             a.phone or (f"browser ({a.client_identity})" if a.client_identity else "not reachable")] for a in agents]
    listing(AgentList(agents=agents), as_json, ["Agent", "Name", "Status", "Role", "Rings"], rows,
            "No agents yet: add one with `flask agents set`.")


@agents_cli.command("show")
@click.argument("agent_id")
@reports
def show_agent(agent_id: str) -> Agent:
    """Show one agent."""
    return DIRECTORY.get().agent(checked_agent_id(agent_id))


@agents_cli.command("set")
@click.argument("agent_id")
@click.option("--file", "file", metavar="PATH", help=_FILE_HELP)
@click.option("--name")
@click.option("--phone", help="the agent's phone, with its country code")
@click.option("--client-identity", help="the Twilio Client identity of the agent's browser")
@click.option("--status", type=click.Choice([s.value for s in AgentStatus]))
@click.option("--role", type=click.Choice([r.value for r in AgentRole]), help="admin: may also administer on the desk")
@click.option("--time-zone", help="the zone the desk shows the agent's times in (default: their first number's)")
@reports
def set_agent(agent_id: str, file: str | None, **options: Any) -> Agent:
    """Create or change an agent: from --file, else its stored record, with the options over it."""
    checked = checked_agent_id(agent_id)
    stored = DIRECTORY.get().agents.get(checked)
    return DIRECTORY.get().set_agent(checked, merged(AgentConfig, stored, file, options))[0]


@agents_cli.command("remove")
@click.argument("agent_id")
@reports
def remove_agent(agent_id: str) -> Removed:
    """Remove an agent no number lists."""
    checked = checked_agent_id(agent_id)
    DIRECTORY.get().remove_agent(checked)
    return Removed(removed=checked)

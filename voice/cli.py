"""`flask numbers` and `flask agents`: the admin API's operations from the command line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from flask import current_app
from flask.cli import AppGroup
from pydantic import BaseModel

from context.schemas import Strict
from core import instance
from core.api import ApiError, validate
from core.instance import RunInfo
from voice import admin_api as admin
from voice.admin_api import SyncReport
from voice.numbers import (
    Agent,
    AgentConfig,
    AgentId,
    AgentList,
    AgentRole,
    AgentStatus,
    CallerIdTrust,
    Number,
    NumberConfig,
    NumberList,
)
from voice.twilio_client import make_client

numbers_cli = AppGroup("numbers", help="Configure support numbers and point them at Threadline.")
agents_cli = AppGroup("agents", help="Configure the agents who answer support numbers.")

_FILE_HELP = "a JSON (.json) or YAML file with the fields; options given override it"


class ConfigFile(Strict):
    """A whole configuration: agents by id and numbers by their E.164 form."""

    agents: dict[AgentId, AgentConfig] = {}
    numbers: dict[str, NumberConfig] = {}


class Applied(BaseModel):
    """What `numbers apply` wrote."""

    agents: list[Agent]
    numbers: list[Number]


class Removed(BaseModel):
    """What `remove` took away."""

    removed: str


class TextIntLoader(yaml.SafeLoader):
    """Safe YAML that keeps integers as written: +14155550100 and 17:00 stay text, the schemas read counts."""


TextIntLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: loader.construct_scalar(node))


def _file_error(path: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_file", f"--file: {path}: {problem}", "--file")


def read_file(path: str) -> dict[str, Any]:
    """The mapping in a JSON (.json) or YAML file; any problem is an ApiError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _file_error(path, getattr(exc, "strerror", None) or str(exc)) from None
    try:
        data = json.loads(text) if path.lower().endswith(".json") else yaml.load(text, Loader=TextIntLoader)
    except json.JSONDecodeError as exc:
        raise _file_error(path, f"not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _file_error(path, f"not valid YAML: {getattr(exc, 'problem', None) or exc}{where}") from None
    if not isinstance(data, dict):
        raise _file_error(path, "expected a mapping of field names to values")
    return data


def merged(model: type[BaseModel], stored: BaseModel | None, file: str | None, options: dict[str, Any]) -> Any:
    """model validated from the file (else the stored record's fields) with the options given set over it."""
    if file:
        base = read_file(file)
    elif stored is not None:
        base = stored.model_dump(mode="json", include=set(model.model_fields))
    else:
        base = {}
    return validate(model, {**base, **{name: value for name, value in options.items() if value is not None}})


def _one_line(error: ApiError) -> str:
    if error.field and not error.message.startswith(error.field):
        return f"{error.field}: {error.message}"
    return error.message


def reports(command: Callable[..., BaseModel]) -> Callable[..., None]:
    """Print the command's result as JSON; an ApiError becomes `error: <field>: <why>` and exit code 1."""

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        try:
            result = command(**kwargs)
        except ApiError as exc:
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
    numbers = admin.number_store().all()
    rows = [[n.number, n.label, n.brand, n.time_zone, ", ".join(n.agents) or "nobody",
             "recorded" if n.record_calls else "not recorded"] for n in numbers]
    listing(NumberList(numbers=numbers), as_json, ["Number", "Label", "Brand", "Time zone", "Agents", "Calls"],
            rows, "No support numbers yet: add one with `flask numbers set`.")


@numbers_cli.command("show")
@click.argument("number")
@reports
def show_number(number: str) -> Number:
    """Show one support number's configuration."""
    return admin.get_number(admin.checked_number(number))


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
@click.option("--max-attempts", type=int)
@reports
def set_number(number: str, file: str | None, agents: tuple[str, ...], **options: Any) -> Number:
    """Create or change a support number: from --file, else its stored configuration, with the options over it."""
    e164 = admin.checked_number(number)
    stored = admin.number_store().get(e164)
    config = merged(NumberConfig, stored, file, {**options, "agents": list(agents) or None})
    return admin.put_number(e164, config)[0]


@numbers_cli.command("apply")
@click.option("--file", "file", metavar="PATH", required=True,
              help='a JSON or YAML file: {"agents": {ID: {...}}, "numbers": {NUMBER: {...}}}')
@reports
def apply_file(file: str) -> Applied:
    """Write a whole configuration, agents first; nothing is written unless all of it is valid."""
    config: ConfigFile = validate(ConfigFile, read_file(file))
    numbers: dict[str, NumberConfig] = {}
    for written, number in config.numbers.items():
        e164 = admin.checked_number(written, f"numbers.{written}")
        if e164 in numbers:
            raise ApiError(422, "invalid_field", f"numbers.{written}: {e164} is listed twice", f"numbers.{written}")
        admin.check_agents(number.agents, prefix=f"numbers.{written}.", planned=config.agents.keys())
        numbers[e164] = number
    agents = [admin.put_agent(agent_id, agent)[0] for agent_id, agent in config.agents.items()]
    return Applied(agents=agents, numbers=[admin.put_number(e164, number)[0] for e164, number in numbers.items()])


@numbers_cli.command("remove")
@click.argument("number")
@reports
def remove_number(number: str) -> Removed:
    """Remove a support number's configuration."""
    e164 = admin.checked_number(number)
    admin.delete_number(e164)
    return Removed(removed=e164)


@numbers_cli.command("sync")
@click.argument("number")
@click.option("--force", is_flag=True, help="detach the number from a TwiML App or SIP trunk (while it is attached "
                                             "to one, Twilio never calls its Voice URL)")
@reports
def sync_number(number: str, force: bool) -> SyncReport:
    """Point the Twilio number's Voice URL and status callback at PUBLIC_BASE_URL (beside bin/run: its carrier's)."""
    e164 = admin.checked_number(number)
    run = _beside_a_local_carrier()
    if run is None or run.carrier is None:
        return admin.sync_number(e164, force, remedy="Sync again with --force to detach it.")
    real = "sync is for a real Twilio number: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL"
    if e164 != run.carrier.number:
        raise ApiError(404, "not_found", f"bin/run's local carrier has only the number {run.carrier.number}; {real}",
                       "number")
    report = admin.sync_number(e164, force, remedy="Sync again with --force to detach it.")
    click.echo(f"bin/run ({run.describe()}) plays Twilio with a local carrier, and it already points the demo number "
               f"{e164} at Threadline (this sync ran against that carrier). {real[0].upper()}{real[1:]}.", err=True)
    return report


def _beside_a_local_carrier() -> RunInfo | None:
    """The bin/run on this data dir if it plays Twilio with a local carrier and no account is set here: use its."""
    if current_app.extensions.get("threadline.twilio") is not None:
        return None
    run = instance.running(current_app.config["VAR_DIR"])
    if run is None or run.carrier is None or not run.web:
        return None
    carrier = run.carrier
    current_app.extensions["threadline.twilio"] = make_client(carrier.account_sid, carrier.auth_token, carrier.url)
    current_app.config["PUBLIC_BASE_URL"] = run.web  # where the run points the demo number
    return run


@agents_cli.command("list")
@_JSON_OPTION
def list_agents(as_json: bool) -> None:
    """List the agents."""
    agents = admin.agent_store().all()
    rows = [[a.id, a.name, a.status.value, a.role.value,
             a.phone or (f"browser ({a.client_identity})" if a.client_identity else "not reachable")] for a in agents]
    listing(AgentList(agents=agents), as_json, ["Agent", "Name", "Status", "Role", "Rings"], rows,
            "No agents yet: add one with `flask agents set`.")


@agents_cli.command("show")
@click.argument("agent_id")
@reports
def show_agent(agent_id: str) -> Agent:
    """Show one agent."""
    return admin.get_agent(admin.checked_agent_id(agent_id))


@agents_cli.command("set")
@click.argument("agent_id")
@click.option("--file", "file", metavar="PATH", help=_FILE_HELP)
@click.option("--name")
@click.option("--phone", help="the agent's phone, with its country code")
@click.option("--client-identity", help="the Twilio Client identity of the agent's browser")
@click.option("--status", type=click.Choice([s.value for s in AgentStatus]))
@click.option("--role", type=click.Choice([r.value for r in AgentRole]), help="admin: may also administer on the desk")
@reports
def set_agent(agent_id: str, file: str | None, **options: Any) -> Agent:
    """Create or change an agent: from --file, else its stored record, with the options over it."""
    checked = admin.checked_agent_id(agent_id)
    stored = admin.agent_store().get(checked)
    return admin.put_agent(checked, merged(AgentConfig, stored, file, options))[0]


@agents_cli.command("remove")
@click.argument("agent_id")
@reports
def remove_agent(agent_id: str) -> Removed:
    """Remove an agent no number lists."""
    checked = admin.checked_agent_id(agent_id)
    admin.delete_agent(checked)
    return Removed(removed=checked)

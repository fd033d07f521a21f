"""Desk administration for admin agents: support numbers and agents edited through forms, or as YAML for
configuration as code; either way validated and saved by the directory, as the admin API and the CLI are."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import yaml
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from pydantic import BaseModel

from desk import bp
from desk.admin_forms import (
    DAY_NAMES,
    AdminForm,
    AgentForm,
    NumberForm,
    language_choices,
    time_zone_choices,
    voice_choices,
)
from desk.auth import View, current_agent_id, login_required
from directory.models import AgentConfig, AgentRole, NumberConfig
from directory.service import (
    DIRECTORY,
    DirectoryError,
    NotFields,
    checked_agent_id,
    checked_number,
    parse_fields,
    validated,
)
from voice.sync import SyncReport, sync_number

MAX_CONFIG_CHARS = 100_000
FORCE_BUTTON = "Detach and sync"
# The Twilio number's fields a sync may change, in words.
SYNC_FIELDS = {"voice_url": "Voice URL", "voice_method": "Voice URL method", "status_callback": "status callback",
               "status_callback_method": "status callback method", "voice_application_sid": "TwiML App",
               "trunk_sid": "SIP trunk"}


def admin_required(view: View) -> View:
    """Signed in (else the login page or 401) and an admin agent (else 403), checked afresh on every request."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        agent = DIRECTORY.get().agents.get(current_agent_id() or "")
        if agent is None or agent.role != AgentRole.admin:
            abort(403)
        g.desk_admin = agent
        return view(*args, **kwargs)

    return login_required(cast(View, guarded))


# --- YAML ----------------------------------------------------------------------------------------------------------

def as_yaml(record: BaseModel, model: type[BaseModel]) -> str:
    """The record's model fields as YAML; safe_dump quotes any text YAML would read as a number, date or bool."""
    data = record.model_dump(mode="json", include=set(model.model_fields))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


def skeleton(model: type[BaseModel]) -> str:
    """The model's required fields, blank, to start a new record from."""
    return "".join(f"{name}:\n" for name, field in model.model_fields.items() if field.is_required())


def from_yaml(model: type[BaseModel], text: str) -> Any:
    """model validated from the YAML text, or a 422 DirectoryError naming the field ("config" when the YAML is bad)."""
    if len(text) > MAX_CONFIG_CHARS:
        raise DirectoryError(422, "invalid_yaml", f"config: longer than {MAX_CONFIG_CHARS} characters", "config")
    try:
        data = parse_fields(text)
    except NotFields:
        raise DirectoryError(422, "invalid_yaml", "config: expected YAML fields, one per line, such as "
                             "`name: Sam Lee`", "config") from None
    except ValueError as exc:
        raise DirectoryError(422, "invalid_yaml", f"config: {exc}", "config") from None
    return validated(model, data)


# --- Pages ---------------------------------------------------------------------------------------------------------

def admin_page(template: str, status: int = 200, **context: Any) -> Any:
    response = current_app.make_response((render_template(template, agent=g.desk_admin, **context), status))
    response.headers["Cache-Control"] = "no-store"  # configuration is not for shared caches or the back button
    return response


def _yaml_page(kind: str, key: str | None, text: str, error: DirectoryError | None = None,
               new_key: str = "") -> Any:
    """The YAML form of a number or agent (key None: the form that adds one)."""
    model = NumberConfig if kind == "number" else AgentConfig
    key_field = "number" if kind == "number" else "agent_id"
    return admin_page("desk/admin_yaml.html", 200 if error is None else error.status, kind=kind, key=key,
                      key_field=key_field, new_key=new_key, text=text, error=error,
                      key_error=error is not None and error.field == key_field,
                      fields=list(model.model_fields), required=[n for n, f in model.model_fields.items()
                                                                  if f.is_required()])


def _number_page(key: str | None, form: NumberForm, status: int = 200,
                 sync_error: DirectoryError | None = None) -> Any:
    """A support number's form (key None: the form that adds one); sync_error: its failed sync."""
    return admin_page("desk/admin_number.html", sync_error.status if sync_error else status, kind="number", key=key,
                      form=form, sync_error=sync_error, force_button=FORCE_BUTTON, days=DAY_NAMES,
                      languages=language_choices(), voices=voice_choices(), zones=time_zone_choices(),
                      agent_choices=form.agent_choices(DIRECTORY.get().agents.all()))


def _agent_page(key: str | None, form: AgentForm, status: int = 200,
                delete_error: DirectoryError | None = None) -> Any:
    """An agent's form (key None: the form that adds one); delete_error: why it was not removed."""
    return admin_page("desk/admin_agent.html", delete_error.status if delete_error else status, kind="agent", key=key,
                      form=form, delete_error=delete_error, zones=time_zone_choices())


def _configured_number(raw: str) -> str:
    """The number in E.164 when it is configured; 404 otherwise."""
    try:
        e164 = checked_number(raw)
    except DirectoryError:
        abort(404)
    if DIRECTORY.get().numbers.get(e164) is None:
        abort(404)
    return e164


def _existing_agent(raw: str) -> str:
    """The agent id when the agent exists; 404 otherwise."""
    try:
        agent_id = checked_agent_id(raw)
    except DirectoryError:
        abort(404)
    if DIRECTORY.get().agents.get(agent_id) is None:
        abort(404)
    return agent_id


def _new_number(raw: str) -> str:
    """A number to add, in E.164: a 422 when it is no number, a 409 when it is configured already."""
    e164 = checked_number(raw.strip())
    if DIRECTORY.get().numbers.get(e164) is not None:
        raise DirectoryError(409, "already_configured", f"number: {e164} is already configured: edit it from the "
                             "list", "number")
    return e164


def _new_agent(raw: str) -> str:
    """An agent id to add: a 422 when it is no id, a 409 when the agent exists."""
    agent_id = checked_agent_id(raw.strip())
    if DIRECTORY.get().agents.get(agent_id) is not None:
        raise DirectoryError(409, "already_exists", f"agent_id: agent {agent_id!r} already exists: edit it from the "
                             "list", "agent_id")
    return agent_id


def _done(message: str) -> Any:
    flash(message)
    return redirect(url_for("desk.admin_index"), 303)


@bp.get("/admin/")
@admin_required
def admin_index() -> Any:
    """Every support number and agent, with links to edit them."""
    return admin_page("desk/admin_index.html", numbers=DIRECTORY.get().numbers.all(),
                      agents=DIRECTORY.get().agents.all(), zones=dict(time_zone_choices()))


def _submit(form: AdminForm, key: str | None, new: Callable[[str], str], model: type[BaseModel],
            save: Callable[[str, Any], Any], check: Callable[[Any], None] = lambda config: None) -> tuple[
                str | None, int]:
    """Validate the form's data as model and save it under key (None: new(the key typed)); every problem the
    directory finds is placed on the form. The key saved (None when refused) and the first refusal's status."""
    status = 200
    if key is None:
        try:
            key = new(form.values[form.key_field])
        except DirectoryError as exc:
            form.place(exc)
            status = exc.status
    try:
        config = validated(model, form.data())
        if key is not None:
            save(key, config)
            return key, 200
        check(config)  # what the directory would say of it too, though the key is wrong
    except DirectoryError as exc:
        form.place(exc)
        status = status if status != 200 else exc.status
    return None, status


# --- Support numbers -----------------------------------------------------------------------------------------------

@bp.route("/admin/numbers/new", methods=["GET", "POST"])
@admin_required
def admin_number_new() -> Any:
    """Add a support number through its form."""
    if request.method == "GET":
        return _number_page(None, NumberForm.of(None))
    form = NumberForm.typed(request.form)
    e164, status = _submit(form, None, _new_number, NumberConfig, DIRECTORY.get().set_number,
                           DIRECTORY.get().check_number)
    return _number_page(None, form, status) if e164 is None else _done(f"Added {e164}.")


@bp.route("/admin/numbers/<number>", methods=["GET", "POST"])
@admin_required
def admin_number(number: str) -> Any:
    """A support number's form; saving replaces its configuration, validated exactly as the admin API does."""
    e164 = _configured_number(number)
    if request.method == "GET":
        return _number_page(e164, NumberForm.of(DIRECTORY.get().number(e164)))
    form = NumberForm.typed(request.form)
    saved, status = _submit(form, e164, _new_number, NumberConfig, DIRECTORY.get().set_number)
    return _number_page(e164, form, status) if saved is None else _done(f"Saved {e164}.")


@bp.route("/admin/numbers/new/yaml", methods=["GET", "POST"])
@admin_required
def admin_number_new_yaml() -> Any:
    """Add a support number: its number and its configuration as YAML."""
    if request.method == "GET":
        return _yaml_page("number", None, skeleton(NumberConfig))
    raw, text = request.form.get("number", ""), request.form.get("config", "")
    try:
        e164 = _new_number(raw)
        DIRECTORY.get().set_number(e164, from_yaml(NumberConfig, text))
    except DirectoryError as exc:
        return _yaml_page("number", None, text, exc, new_key=raw.strip())
    return _done(f"Added {e164}.")


@bp.route("/admin/numbers/<number>/yaml", methods=["GET", "POST"])
@admin_required
def admin_number_yaml(number: str) -> Any:
    """A support number's configuration as YAML; saving replaces it, validated exactly as the admin API does."""
    e164 = _configured_number(number)
    if request.method == "GET":
        return _yaml_page("number", e164, as_yaml(DIRECTORY.get().number(e164), NumberConfig))
    text = request.form.get("config", "")
    try:
        DIRECTORY.get().set_number(e164, from_yaml(NumberConfig, text))
    except DirectoryError as exc:
        return _yaml_page("number", e164, text, exc)
    return _done(f"Saved {e164}.")


def sync_summary(report: SyncReport) -> str:
    """What a sync changed on the Twilio number, in a sentence."""
    if not report.changes:
        return f"{report.number} already pointed at Threadline on Twilio: nothing changed."
    changes = "; ".join(f"{SYNC_FIELDS.get(name, name)}: {change.from_ or 'none'} → {change.to or 'none'}"
                        for name, change in report.changes.items())
    return f"Synced {report.number} with Twilio. {changes}."


@bp.post("/admin/numbers/<number>/sync")
@admin_required
def admin_number_sync(number: str) -> Any:
    """Point the Twilio number at Threadline; one attached to a TwiML App or SIP trunk is shown with a way to force."""
    e164 = _configured_number(number)
    try:
        report = sync_number(e164, request.form.get("force") == "1",
                             remedy=f"Press “{FORCE_BUTTON}” to detach it and point it at Threadline.")
    except DirectoryError as exc:
        return _number_page(e164, NumberForm.of(DIRECTORY.get().number(e164)), sync_error=exc)
    flash(sync_summary(report))
    return redirect(url_for("desk.admin_number", number=e164), 303)


@bp.post("/admin/numbers/<number>/delete")
@admin_required
def admin_number_delete(number: str) -> Any:
    """Remove a support number's configuration."""
    e164 = _configured_number(number)
    try:
        DIRECTORY.get().remove_number(e164)
    except DirectoryError:
        abort(404)  # removed meanwhile
    return _done(f"Removed {e164}.")


# --- Agents --------------------------------------------------------------------------------------------------------

@bp.route("/admin/agents/new", methods=["GET", "POST"])
@admin_required
def admin_agent_new() -> Any:
    """Add an agent through its form."""
    if request.method == "GET":
        return _agent_page(None, AgentForm.of(None))
    form = AgentForm.typed(request.form)
    agent_id, status = _submit(form, None, _new_agent, AgentConfig, DIRECTORY.get().set_agent)
    return _agent_page(None, form, status) if agent_id is None else _done(f"Added agent {agent_id}.")


@bp.route("/admin/agents/<agent_id>", methods=["GET", "POST"])
@admin_required
def admin_agent(agent_id: str) -> Any:
    """An agent's form; saving replaces the record, validated exactly as the admin API does."""
    checked = _existing_agent(agent_id)
    if request.method == "GET":
        return _agent_page(checked, AgentForm.of(DIRECTORY.get().agent(checked)))
    form = AgentForm.typed(request.form)
    saved, status = _submit(form, checked, _new_agent, AgentConfig, DIRECTORY.get().set_agent)
    return _agent_page(checked, form, status) if saved is None else _done(f"Saved agent {checked}.")


@bp.route("/admin/agents/new/yaml", methods=["GET", "POST"])
@admin_required
def admin_agent_new_yaml() -> Any:
    """Add an agent: its id and its record as YAML."""
    if request.method == "GET":
        return _yaml_page("agent", None, skeleton(AgentConfig))
    raw, text = request.form.get("agent_id", ""), request.form.get("config", "")
    try:
        agent_id = _new_agent(raw)
        DIRECTORY.get().set_agent(agent_id, from_yaml(AgentConfig, text))
    except DirectoryError as exc:
        return _yaml_page("agent", None, text, exc, new_key=raw.strip())
    return _done(f"Added agent {agent_id}.")


@bp.route("/admin/agents/<agent_id>/yaml", methods=["GET", "POST"])
@admin_required
def admin_agent_yaml(agent_id: str) -> Any:
    """An agent's record as YAML; saving replaces it, validated exactly as the admin API does."""
    checked = _existing_agent(agent_id)
    if request.method == "GET":
        return _yaml_page("agent", checked, as_yaml(DIRECTORY.get().agent(checked), AgentConfig))
    text = request.form.get("config", "")
    try:
        DIRECTORY.get().set_agent(checked, from_yaml(AgentConfig, text))
    except DirectoryError as exc:
        return _yaml_page("agent", checked, text, exc)
    return _done(f"Saved agent {checked}.")


@bp.post("/admin/agents/<agent_id>/delete")
@admin_required
def admin_agent_delete(agent_id: str) -> Any:
    """Remove an agent; refused (409, with the numbers that list it) while a number still lists the agent."""
    checked = _existing_agent(agent_id)
    try:
        DIRECTORY.get().remove_agent(checked)
    except DirectoryError as exc:
        if exc.status == 404:
            abort(404)  # removed meanwhile
        return _agent_page(checked, AgentForm.of(DIRECTORY.get().agent(checked)), delete_error=exc)
    return _done(f"Removed agent {checked}.")

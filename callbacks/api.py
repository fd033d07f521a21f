"""The callbacks API: ask for a call inside a thread, read, reschedule or cancel it."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from flask import Blueprint

from callbacks import dialer, lifecycle
from callbacks.schemas import (
    Adjusted,
    Callback,
    CallbackIn,
    CallbackList,
    Cancel,
    Reschedule,
    Slot,
    SlotList,
    SlotQuery,
    State,
)
from callbacks.store import CALLBACKS, CallbackNotFound, new_id
from callbacks.when import WhenError, parse_when
from callbacks.windows import callee_zone, next_allowed, slots, speak_time
from context.events import EventType
from context.lookup import NO_SUCH_THREAD, checked_thread_id, existing_thread
from context.phones import callable_person, country_of
from core import keys
from core.api import API_PREFIX, ApiError, require_api_key
from core.extensions import QUEUE
from core.openapi import API
from directory.models import Number
from directory.service import checked_number
from directory.store import NUMBERS

bp = Blueprint("callbacks", __name__, url_prefix=API_PREFIX)
require_api_key(bp)

_NOT_FOUND = ("no such callback", None)


def _number(e164: str) -> Number:
    number: Number | None = NUMBERS.get().get(e164)
    if number is None:
        raise ApiError(422, "invalid_field", f"number: {e164} is not a support number Threadline serves", "number")
    return number


def _callback(callback_id: str) -> Callback:
    if not re.match(keys.ID_PATTERN, callback_id):
        raise ApiError(422, "invalid_field", f"callback_id: {keys.ID_RULE}", "callback_id")
    try:
        return CALLBACKS.get().get(callback_id)
    except CallbackNotFound:
        raise ApiError(404, "not_found", f"no callback with id {callback_id!r}", "callback_id") from None


def plan(when: str, number: Number, zone: str, now: datetime) -> tuple[datetime, Adjusted | None]:
    """The instant to dial: what was asked, moved to the next moment both the callee and the number allow."""
    try:
        requested = parse_when(when, zone, now) or now.replace(microsecond=0)
    except WhenError as exc:
        raise ApiError(422, "invalid_when", f"when: {exc.reason}", "when") from None
    allowed = next_allowed(requested, number, zone)
    if allowed is None:
        raise ApiError(422, "invalid_when", "when: no time in the next 45 days is inside both the calling window "
                       "and the number's opening hours", "when")
    if allowed > requested + lifecycle.EARLY_TOLERANCE:
        return allowed, Adjusted(reason="outside the calling window or opening hours", requested=requested)
    return requested, None


@API.route(bp, "/threads/<thread_id>/callbacks", "POST", body=CallbackIn, summary="Ask for a callback",
           description="One live callback per thread: asking again while one is live is a 409 whose "
                       "details give the live callback's id, to move it (PATCH) or cancel it (DELETE); the new "
                       "request changes nothing.",
           responses={201: ("scheduled", Callback), 404: NO_SUCH_THREAD,
                      409: ("the thread already has a live callback", None)})
def create_callback(thread_id: str, body: CallbackIn) -> tuple[Callback, int]:
    stored, created = open_callback(thread_id, body)
    if not created:
        raise ApiError(409, "callback_exists",
                       f"thread {thread_id!r} already has a callback, {stored.customer_local_time}: move it with "
                       f"PATCH {API_PREFIX}/callbacks/{stored.id} or cancel it with DELETE", "thread_id",
                       details=[{"callback_id": stored.id, "state": stored.state.value}])
    return stored, 201


def open_callback(thread_id: str, body: CallbackIn) -> tuple[Callback, bool]:
    """Schedule a callback for the thread (or return its live one, and False); ApiError names what's wrong."""
    thread = existing_thread(thread_id, newest=1)
    number = _number(body.number)
    if body.agent_id and body.agent_id not in number.agents:
        raise ApiError(422, "invalid_field", f"agent_id: {body.agent_id!r} doesn't answer {number.number}",
                       "agent_id")
    if body.phone and body.phone != thread.customer.phone:
        # Another phone than the customer's hears their conversation named: only a person's line, in an allowed country.
        countries = frozenset(number.callback_countries) or frozenset({country_of(number.number) or ""})
        if refused := callable_person(body.phone, countries):
            raise ApiError(422, "invalid_field", f"phone: {refused}", "phone")
    now = datetime.now(UTC)
    phone = body.phone or thread.customer.phone
    zone = callee_zone(thread.customer.time_zone, phone, number.time_zone)
    scheduled_for, adjusted = plan(body.when, number, zone, now)
    callback = Callback(id=new_id(), thread_id=thread.id, state=State.scheduled, mode=body.mode,
                        number=number.number, phone=phone, callee_zone=zone, agent_id=body.agent_id,
                        scheduled_for=scheduled_for, customer_local_time=speak_time(scheduled_for, zone, now),
                        adjusted=adjusted, created_at=now, updated_at=now)
    stored, created = CALLBACKS.get().create(callback, announce=lambda new: [
        dialer.news(new, EventType.callback_scheduled, f"We'll call you {new.customer_local_time}.")])
    if created:
        dialer.schedule(QUEUE.get(), stored, now)
    return stored, created


@API.route(bp, "/callbacks/<callback_id>", "GET", summary="Read a callback", responses={200: ("it", Callback),
                                                                                          404: _NOT_FOUND})
def get_callback(callback_id: str) -> tuple[Callback, int]:
    return _callback(callback_id), 200


@API.route(bp, "/threads/<thread_id>/callbacks", "GET", summary="A thread's callbacks, newest first",
           responses={200: ("them", CallbackList)})
def list_callbacks(thread_id: str) -> tuple[CallbackList, int]:
    return CallbackList(callbacks=CALLBACKS.get().for_thread(checked_thread_id(thread_id))), 200


@API.route(bp, "/callbacks/<callback_id>", "PATCH", body=Reschedule, summary="Reschedule a callback",
           responses={200: ("rescheduled", Callback), 404: _NOT_FOUND, 409: ("it is no longer scheduled", None)})
def reschedule_callback(callback_id: str, body: Reschedule) -> tuple[Callback, int]:
    current = _callback(callback_id)
    number = _number(current.number)
    now = datetime.now(UTC)
    scheduled_for, adjusted = plan(body.when, number, current.callee_zone, now)
    moved = CALLBACKS.get().update(
        callback_id, functools.partial(lifecycle.reschedule, when=scheduled_for, adjusted=adjusted, now=now),
        announce=lambda due: [dialer.news(due, EventType.callback_rescheduled,
                                          f"We'll call you {due.customer_local_time} instead.")])
    if moved.scheduled_for != scheduled_for:
        raise ApiError(409, "conflict", f"the callback is {moved.state.value}, not scheduled", "callback_id")
    dialer.schedule(QUEUE.get(), moved, now)
    return moved, 200


@API.route(bp, "/callbacks/<callback_id>", "DELETE", body=Cancel, optional_body=True, summary="Cancel a callback",
           responses={200: ("canceled", Callback), 404: _NOT_FOUND, 409: ("it has already ended", None)})
def cancel_callback(callback_id: str, body: Cancel) -> tuple[Callback, int]:
    _callback(callback_id)
    canceled = dialer.cancel(CALLBACKS.get(), callback_id, body.reason)
    if canceled is None:
        current = _callback(callback_id)
        raise ApiError(409, "conflict", f"the callback is {current.state.value}", "callback_id")
    return canceled, 200



@API.route(bp, "/numbers/<number>/slots", "GET", query=SlotQuery, summary="Bookable callback times on a day",
           description="Every half hour of the day (in tz) that is inside the calling window and the number's "
                       "opening hours, and still ahead.",
           responses={200: ("the slots", SlotList)})
def list_slots(number: str, query: SlotQuery) -> tuple[SlotList, int]:
    config = _number(checked_number(number))
    zone = query.tz or config.time_zone
    now = datetime.now(UTC)
    found = slots(query.date, zone, config, zone, now)
    return SlotList(time_zone=zone, slots=[Slot(start=s, local_time=speak_time(s, zone, now)) for s in found]), 200

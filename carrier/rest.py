"""The subset of Twilio's 2010-04-01 REST API the carrier serves: Calls (with their Events, Notifications and
Recordings), the account's Notifications and Recordings, IncomingPhoneNumbers and Keys.

Importing this module registers every route on `bp`; the resources live in the rest_* modules."""

from __future__ import annotations

from carrier import rest_calls, rest_numbers, rest_recordings
from carrier.rest_base import bp, twilio_http_error

RESOURCES = (rest_calls, rest_numbers, rest_recordings)  # the modules whose routes `bp` carries

__all__ = ["RESOURCES", "bp", "twilio_http_error"]

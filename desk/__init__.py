"""The agents' desk under /desk: sign-in, home, thread pages, live screen pops, actions, admin and the phone."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("desk", __name__, url_prefix="/desk", template_folder="templates", static_folder="static")

# Each module adds its routes to bp when imported: importing the package brings the whole desk.
from desk import actions, admin, auth, live, pages, phone, reports, wording  # noqa: E402, F401

"""gunicorn's own lines (its errors and the access log) in the format LOG_FORMAT asks for."""

from __future__ import annotations

from typing import Any

from gunicorn import glogging

from core import logs
from core.request_log import ENVIRON_KEY


class Logger(glogging.Logger):
    """gunicorn's logger: as configured in text, phone numbers and secrets masked; in JSON, every line through
    Threadline's formatter, and an access line with its parts as fields (the path without its query)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(logs.JsonFormatter("web") if logs.is_json() else logs.Masked(handler.formatter))

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not logs.is_json():
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = str(getattr(resp, "status", "") or "").split(" ", 1)[0]
        fields = {"method": environ.get("REQUEST_METHOD", ""), "path": environ.get("PATH_INFO", ""),
                  "status": int(status) if status.isdigit() else status,
                  "bytes": getattr(resp, "sent", None),
                  "duration_ms": round(request_time.total_seconds() * 1000, 1),
                  "remote": environ.get("REMOTE_ADDR", "")}
        if environ.get(ENVIRON_KEY):
            fields["request_id"] = environ[ENVIRON_KEY]
        self.access_log.info("%s %s %s", fields["method"], fields["path"], fields["status"],
                             extra={"fields": fields})

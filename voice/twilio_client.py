"""The one way Threadline reaches Twilio's REST API: twilio.rest.Client over one kept-alive connection pool,
optionally sent to another base URL."""

from __future__ import annotations

import re
from typing import Any

import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

_TWILIO_HOST = re.compile(r"^https://[^/]*twilio\.com")


class PooledHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, whose connection pool serves every request of the process (a worker's dial jobs reuse
    one kept-alive connection), and is emptied when a request ends without an answer (a timeout, or a job's timeout
    interrupting it), so a connection left mid-request is never used again."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().request(method, url, *args, **kwargs)
        except BaseException:
            if self.session is not None:
                self.session.close()  # closes every pooled connection; the next request opens a new one
            raise


class RedirectingHttpClient(PooledHttpClient):
    """Sends every request meant for a twilio.com host to base_url instead (the local carrier)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        """Where a twilio.com URL is served here."""
        return _TWILIO_HOST.sub(self.base_url, url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, self.rewrite(url), *args, **kwargs)


def make_client(account_sid: str, auth_token: str, api_base_url: str | None = None, timeout: float = 10) -> Client:
    """A Twilio client; with api_base_url every request goes there, whatever TWILIO_EDGE/TWILIO_REGION say."""
    if not api_base_url:
        return Client(account_sid, auth_token, http_client=PooledHttpClient(timeout=timeout))
    client = Client(account_sid, auth_token, http_client=RedirectingHttpClient(api_base_url, timeout=timeout))
    # The edge and region rewrite hostnames ("api.sydney.au1.twilio.com"); with a base URL they mean nothing.
    client.edge = None
    client.region = None
    return client


def recording_media(client: Client, recording_sid: str, extension: str = "mp3", timeout: float = 10
                    ) -> requests.Response:
    """A recording's audio, streamed from the Recordings resource with the account's credentials (Twilio's media
    URLs need them). The URL is built from the SID, never taken from a request, so the credentials go nowhere else;
    a redirect to another host (Twilio's media storage) drops them, as requests does."""
    url = f"{client.api.base_url}/2010-04-01/Accounts/{client.account_sid}/Recordings/{recording_sid}.{extension}"
    http = client.http_client
    if isinstance(http, RedirectingHttpClient):
        url = http.rewrite(url)
    session = getattr(http, "session", None) or requests.Session()
    return session.get(url, auth=(client.username, client.password), timeout=timeout, stream=True)

"""`python -m carrier`: run the local carrier until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from carrier.server import DESK_URL, CarrierServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m carrier", description="A local Twilio-compatible voice carrier.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--number", action="append", default=[], metavar="E164",
                        help="give the account this phone number (repeatable)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="real seconds per simulated second (0.01 makes calls 100 times faster)")
    parser.add_argument("--phones-file", type=Path, metavar="PATH",
                        help="keep scripted phones and the dev phone's own number in this JSON file across restarts "
                             "(without it they last until the carrier stops)")
    parser.add_argument("--desk-url", default=os.environ.get("THREADLINE_DESK_URL", DESK_URL),
                        help=f"the agent desk the dev phone links to (default $THREADLINE_DESK_URL or {DESK_URL})")
    args = parser.parse_args()
    account_sid, auth_token = os.environ.get("TWILIO_ACCOUNT_SID"), os.environ.get("TWILIO_AUTH_TOKEN")
    if not account_sid or not auth_token:
        parser.error("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: the carrier checks them as Twilio does")
    server = CarrierServer(account_sid, auth_token, host=args.host, port=args.port, scale=args.time_scale,
                           numbers=tuple(args.number), quiet=False, phones_file=args.phones_file,
                           desk_url=args.desk_url).start()
    print(f"carrier: Twilio REST API at {server.url} (TWILIO_API_BASE_URL={server.url}); "
          f"dev phone at {server.url}/_carrier/; numbers: {', '.join(args.number) or 'none'}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()

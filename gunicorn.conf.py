"""gunicorn settings for the web process (read from the working directory by gunicorn itself)."""

import gc
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent: each open desk event stream (SSE) is a greenlet waiting on Redis, not a thread, so hundreds of desks don't
# starve Twilio's webhooks (bench/screenpop.py). WEB_WORKER_CLASS=gthread goes back to threads.
worker_class = os.environ.get("WEB_WORKER_CLASS", "gevent")
# Per worker: open desks plus webhooks. Every desk is an idle socket (its screen pops come from the worker's one
# subscription, desk/fanout.py): 2,000 desks spread unevenly over the workers must leave room for Twilio.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "4000"))
threads = int(os.environ.get("WEB_THREADS", "8"))  # gthread only
# Beyond its connections a worker holds its Redis pools (32 each), its logs and the app's files.
OWN_FILES = 256


def open_files_for(connections: int) -> str | None:
    """Raise this process's open-file limit (the workers inherit it) toward the hard limit, so a worker can hold
    connections sockets: a shell's usual 1,024 refused desks past about a thousand a worker. What is still short,
    in words, or None."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + OWN_FILES
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        return (f"open files are limited to {target:,} (the hard limit), so each web worker holds fewer than its "
                f"WEB_WORKER_CONNECTIONS of {connections:,}: raise the hard limit (ulimit -Hn, or LimitNOFILE in a "
                f"systemd unit) to {wanted:,}")
    return None


if worker_class == "gevent" and __name__ == "__config__":  # gunicorn reading this file, not a script
    # Before the preloaded app imports ssl, socket and threading: gunicorn's worker patches only after fork, when
    # every TLS context the app made would fail (RecursionError) and locks made at import would block the worker.
    from gevent import monkey

    monkey.patch_all()
if __name__ == "__config__":
    import logging

    from core import logs

    logs.configure("web")  # the app's own lines; gunicorn's go through logger_class
    if short := open_files_for(worker_connections):
        logging.getLogger("threadline").warning(short)
logger_class = "core.gunicorn_logs.Logger"
# Load the app once in the master: a bad configuration stops gunicorn with one line instead of
# every worker failing in a loop.
preload_app = True
# forwarded_allow_ips is not set here: gunicorn reads FORWARDED_ALLOW_IPS itself (default 127.0.0.1,::1). Behind a
# proxy on another address, list it there so its X-Forwarded-Proto makes requests https.
accesslog = "-"
# The path without its query string: queries can carry phone numbers, which stay out of logs.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket lives at one path per user, so two instances on a machine would fight over it.
control_socket_disable = True


def pre_fork(server: object, worker: object) -> None:
    """In the master, before each worker: the preloaded app's objects are left out of the workers' garbage
    collections (and their memory stays shared)."""
    gc.freeze()


def post_fork(server: object, worker: object) -> None:
    """In each worker: a young collection once 50,000 objects are made, not 700. With the default, every collection
    promoted the objects of the requests under way, which soon made full collections over every open desk's stream:
    100-700 ms each with 1,000 desks a worker, in the webhooks' p99 (bench/screenpop.py --desks 2000). And its desk
    streams end as it starts to stop, instead of holding it up to its graceful timeout (30 s) on each deploy."""
    gc.set_threshold(50_000, 20, 10)
    stop = worker.handle_exit  # type: ignore[attr-defined]

    def handle_exit(sig: int, frame: object) -> None:
        stop(sig, frame)  # no new requests
        # Out of the signal handler, as gunicorn's own quit is: under gevent it runs in the event loop, which a
        # thread's start would block.
        if worker_class == "gevent":
            import gevent

            gevent.spawn(_end_desk_streams)
        else:
            import threading

            threading.Thread(target=_end_desk_streams, name="end desk streams", daemon=True).start()

    worker.handle_exit = handle_exit  # type: ignore[attr-defined]  # before the worker installs its signal handlers


def _end_desk_streams() -> None:
    import logging

    from desk import fanout, words

    if ended := fanout.stop_all():
        logging.getLogger("threadline").info("stopping: ended %s; the desks reconnect",
                                             words.count(ended, "desk event stream"))


def when_ready(server: object) -> None:
    """Once, in the master: what this configuration lacks. Under bin/run its banner says it instead."""
    import logging

    from core import config

    if not os.environ.get("THREADLINE_INSTANCE"):
        for warning in config.web_warnings(config.load()):
            logging.getLogger("threadline").warning(warning)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # bin/run always sets it
            logging.getLogger("threadline").warning(
                "PROMETHEUS_MULTIPROC_DIR is not set: /metrics shows only what the web worker answering it counted, "
                "not the other web workers', the worker's or the clock's")


def child_exit(server: object, worker: object) -> None:
    """In the master, when a worker ends: its live gauges (open desk streams) end with it in /metrics."""
    from core import metrics

    metrics.process_dead(worker.pid)  # type: ignore[attr-defined]

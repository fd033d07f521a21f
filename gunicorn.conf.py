"""gunicorn settings for the web process (read from the working directory by gunicorn itself)."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# Load the app once in the master: a bad configuration stops gunicorn with one line instead of
# every worker failing in a loop.
preload_app = True
accesslog = "-"
# The path without its query string: queries can carry phone numbers, which stay out of logs.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket lives at one path per user, so two instances on a machine would fight over it.
control_socket_disable = True

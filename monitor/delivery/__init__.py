"""Messages and the outbox policy: per-target markup, templates, rendering, when to send.

markup (the four markups, escaping, size limits, Apprise body formats) and templates
(sandboxed Jinja2) import monitor.model and monitor.errors only, because config builds on
them; render (alerts, folds, digests, follow-ups, failure notices) and policy (building an
outbox entry, retry backoff, quiet hours and rate limits) may also import monitor.config,
monitor.rules and monitor.state. Pure: no I/O, `now` passed in.
"""

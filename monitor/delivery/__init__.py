"""Messages: per-target markup and escaping, templates, rendering.

markup (markup kinds, escaping, size limits) and templates (sandboxed Jinja2) import
monitor.model only, because config builds on them; render (alerts, digests, failure
notices) may also import monitor.config, monitor.rules, monitor.state and
monitor.sources.htmltext. Pure: no I/O.
"""

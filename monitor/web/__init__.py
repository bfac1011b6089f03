"""The daemon's HTTP face: /healthz, /readyz, /metrics and the dashboard (with its rule
tester), served by aiohttp.web in the daemon's own event loop.

An adapter layer on top of the service: it reads only through monitor.service.queries
(and the Protocols in monitor.ports), and it alone imports aiohttp.web and prometheus_client
(jinja2 is shared with monitor.delivery.templates, which renders messages). It never imports
monitor.adapters: daemon.py hands it a store, a target directory and a fetcher factory.

Modules: metrics (the Prometheus registry and the measuring fetcher and notifier wrappers),
security (token, cookie, CSRF, headers), app (routes and pages), server (start and stop),
probe (`monitor healthcheck`), websub (the WebSub callbacks).

May import monitor.service, monitor.ports and everything below them; never monitor.adapters
or monitor.daemon.
"""

"""The only importers of their libraries; each implements a service Protocol.

fetch (httpx/aiohttp: the Fetcher), notify (apprise: the Notifier), store/ (sqlite3: the
Store), watch (watchfiles: config files changing, for the daemon's reload), hub (httpx: WebSub
hub requests, the HubClient). They never
import each other, the service, daemon or cli.

May import monitor.model, monitor.state, monitor.errors and monitor.sources.identity.
"""

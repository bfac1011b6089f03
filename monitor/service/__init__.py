"""One poll, one outbox pass: the application layer between daemon/cli and the core.

poll (Service: fetch, read, match, group into stories, save in one transaction), collect
(Collector: fetch a source and read new items through the Fetcher Protocol), outbox (Outbox:
send due deliveries, digests, follow-ups through the Notifier Protocol).

Sees adapters only through Protocols: may import config, sources, rules, matching,
delivery, model, state, errors; never monitor.adapters, monitor.config.files, daemon or cli.
"""

"""One poll, one outbox pass: the application layer between daemon/cli and the core.

poll (Service: fetch, read, match, group into stories, save in one transaction), collect
(Collector: fetch a source and read its new items), outbox (Outbox: send due deliveries,
digests, follow-ups), queries (what the CLI and the web read), websub (Subscriber: WebSub
subscriptions, verification, pushed content into the poll's path). The seams they use are
monitor.ports.

Sees adapters only through monitor.ports: may import ports, config, sources, rules, matching,
delivery, model, state, errors; never monitor.adapters, monitor.config.files, daemon or cli.
"""

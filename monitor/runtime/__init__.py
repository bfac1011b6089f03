"""The running daemon: runner (the scheduled work of `monitor run` on apscheduler: polls with
jitter, the outbox pass, digests, pruning, the cluster heartbeat; a shutdown that lets work in
flight finish), reloading (SIGHUP and file watching: load off the event loop, swap, and
reschedule only what changed) and checks (what `check` and `run` refuse: bad digest
schedules and targets).

Built and wired by monitor.daemon (the composition root). May import monitor.web,
monitor.service, monitor.adapters.watch, monitor.config, monitor.matching, monitor.ports,
monitor.model, monitor.state, monitor.errors and apscheduler; never monitor.daemon or cli, and
no other adapter (the store, fetcher and notifier come in through the Service and a loader),
except that checks builds the notifier adapter to ask it which target URLs it cannot read.
"""

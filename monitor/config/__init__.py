"""Config in: TOML text to typed, frozen config.

schema (Config, Rule, Source, Target; parse_main, parse_rules, build_config), toml (typed
tables with file/line context), durations ("90s", "1h"); files.py alone reads the disk.

May import monitor.errors, monitor.model, monitor.rules, monitor.delivery.markup and
monitor.delivery.templates; never sources, matching, service, adapters, daemon or cli.
"""

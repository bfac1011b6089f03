"""Which new articles alert and which rules match them.

decide (intake/triage, the Matcher over the rule index, fetch backoff and cache floors,
delivery ids, retry and quiet hours), stories (grouping copies of one story). Pure: `now`
is passed in.

May import monitor.rules, monitor.config, monitor.model and monitor.state.
"""

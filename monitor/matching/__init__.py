"""Which new articles alert and which rules match them.

intake (Intake and triage: which items are new and may alert; the Matcher over the rule
index), stories (fingerprints, boilerplate, grouping copies of one story). Pure: `now` is
passed in.

May import monitor.rules, monitor.config, monitor.model and monitor.state.
"""

"""Bytes of a feed or page to Articles.

feeds (feed parsing, feedparser fallback), fastfeed (the fast RSS/Atom reader), pages and
pagemeta (article pages and their structured data), cmsmarkup (lede and tag markup of the
common CMSs), pagedates (page dates, tree caps), charset, htmltext, identity (canonical
URLs, article ids), newest (which items are the newest). Pure: no I/O.

May import monitor.model, monitor.state and monitor.errors only (and each other).
"""

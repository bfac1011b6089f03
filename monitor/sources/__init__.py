"""Bytes of a feed or page to Articles, and when a source may be fetched again.

feeds (feed parsing, feedparser fallback), fastfeed (the fast RSS/Atom reader), pages and
pagemeta (article pages and their structured data), cmsmarkup (lede and tag markup of the
common CMSs), pagedates (page dates, tree caps), charset, htmltext, identity (canonical
URLs, identity keys, article and link ids), newest (which items are the newest), manners
(the publisher's limits and error backoff: the next fetch time), websub (WebSub discovery,
signatures, lease arithmetic). Pure: no I/O, `now`
passed in.

May import monitor.model, monitor.state and monitor.errors only (and each other).
"""

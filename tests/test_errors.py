"""Every error meant for the user is a MonitorError; the old bases still hold."""

from __future__ import annotations

import pytest

from monitor.delivery.templates import TemplateError, compile_template
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.rules import RuleSyntaxError, compile_query
from monitor.sources.feeds import FeedError, parse_feed


@pytest.mark.parametrize(
    "error", [ConfigError, StoreError, FeedError, RuleSyntaxError, TemplateError]
)
def test_user_facing_errors_are_monitor_errors(error: type[Exception]) -> None:
    assert issubclass(error, MonitorError)


@pytest.mark.parametrize("error", [FeedError, RuleSyntaxError])
def test_errors_that_were_value_errors_still_are(error: type[Exception]) -> None:
    assert issubclass(error, ValueError)


def test_each_is_raised_where_it_was() -> None:
    with pytest.raises(FeedError, match="not a feed"):
        parse_feed(b"plain words, no markup", source="s", url="https://e.example/")
    with pytest.raises(RuleSyntaxError, match="unclosed"):
        compile_query("(Japan")
    with pytest.raises(TemplateError, match="titel"):
        compile_template("{{ titel }}")

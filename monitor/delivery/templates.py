"""Alert messages from Jinja2 templates, escaped for each target's markup. Pure (no I/O).

Design: templates run in an immutable Jinja2 sandbox with ``StrictUndefined``. Variables
hold *raw* (control-character-free) text, so filters such as ``truncate`` or ``join`` work
on real text; every ``{{ ... }}`` output then passes through a ``finalize`` hook that
escapes it for the target's markup (`monitor.delivery.markup.escape`). The only values that
bypass escaping are the two links we build ourselves (``title_link``, ``link``); they are
opaque objects, not strings, so any template operation on them (filters, slicing, ``~``,
``|safe``) produces a plain string, which is escaped again. The literal text of a
template is trusted (it comes from the config author); feed text is only ever data and is
never parsed as a template.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.delivery.markup import (
    Markup,
    escape,
    escape_title,
    fit,
    fit_title,
    limit_for,
    link_line,
    measure,
    safe_url,
    shorten,
)
from monitor.errors import MonitorError
from monitor.model import Article, clean_text

__all__ = [
    "DEFAULT_BODIES",
    "DEFAULT_TITLE",
    "VARIABLES",
    "AlertContext",
    "CompiledTemplate",
    "Message",
    "TemplateError",
    "compile_template",
    "render_message",
]

VARIABLES: dict[str, str] = {
    "title": "article title",
    "title_generated": "true when the item had no title and `title` was made from its text",
    "url": "article URL (http/https only, else empty)",
    "source": "source name (or label)",
    "published": 'publication time as "YYYY-MM-DD HH:MM UTC", or empty',
    "published_at": "publication time as a datetime (UTC), or none",
    "section": "list of section names, e.g. World, Asia",
    "byline": "source · published · section path, the parts that exist",
    "lede": "the article's lede (standfirst), may be empty",
    "snippet": "the lede or body passage around the best match, else the start of either",
    "terms": "list of the query terms that matched",
    "matched": "explanation of the match (defaults to the terms, comma-separated)",
    "rule": "rule name",
    "story_sources": 'list of other sources with the same story ("also reported by")',
    "title_link": "the title as a link to the article, built for the target's markup",
    "link": "the bare article link for the target's markup (the standard last line)",
    "markup": "the target's markup: slack, markdown, html or text",
    "kind": "the same as markup (its older name)",
}

DEFAULT_TITLE = "{{ title }} [{{ rule }}]"

_CHAT_BODY = """\
**{{ title_link }}**
{{ byline }}
{% if snippet %}

{{ snippet }}
{% endif %}
{% if story_sources %}

Also reported by: {{ story_sources | join(", ") }}
{% endif %}

Matched: {{ matched }} · rule {{ rule }}
{{ link }}
"""

_HTML_BODY = """\
<!DOCTYPE html>
<html><head><meta charset="utf-8"></head>
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; \
line-height: 1.45; color: #222; max-width: 40em;">
<h2 style="font-size: 1.2em; margin: 0 0 0.3em;"><a href="{{ url }}">{{ title }}</a></h2>
<p style="color: #666; margin: 0 0 1em;">{{ byline }}</p>
{% if snippet %}
<p>{{ snippet }}</p>
{% endif %}
{% if story_sources %}
<p>Also reported by: {{ story_sources | join(", ") }}</p>
{% endif %}
<p style="color: #666; font-size: 0.9em;">Matched: {{ matched }} · rule {{ rule }}</p>
{{ link }}
</body></html>
"""

_TEXT_BODY = """\
{{ title }}
{{ byline }}
{% if snippet %}

{{ snippet }}
{% endif %}
{% if story_sources %}

Also reported by: {{ story_sources | join(", ") }}
{% endif %}

Matched: {{ matched }} · rule {{ rule }}
{{ link }}
"""

DEFAULT_BODIES: dict[Markup, str] = {
    "slack": _CHAT_BODY,
    "markdown": _CHAT_BODY,
    "html": _HTML_BODY,
    "text": _TEXT_BODY,
}

BODY_TITLE_WIDTH = 500
_MAX_REPEAT = 100_000
_BLANK_LINES = re.compile(r"[ \t]+\n|\n{3,}")


class TemplateError(MonitorError):
    """A template that does not compile or render; `line` is the template line if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"{message} (line {line})" if line else message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What a template may show about one match. Text here is raw, not yet escaped."""

    title: str
    url: str
    source: str
    rule: str
    published: datetime | None = None
    section: tuple[str, ...] = ()
    lede: str = ""
    snippet: str = ""
    terms: tuple[str, ...] = ()
    story_sources: tuple[str, ...] = ()
    matched: str = ""
    title_generated: bool = False

    @classmethod
    def from_article(
        cls,
        article: Article,
        rule: str,
        terms: Sequence[str],
        *,
        source: str | None = None,
        snippet: str | None = None,
        story_sources: Sequence[str] = (),
        matched: str = "",
    ) -> AlertContext:
        return cls(
            title=article.title,
            url=article.url,
            source=article.source if source is None else source,
            rule=rule,
            published=article.published,
            section=article.section,
            lede=article.lede,
            snippet=article.lede if snippet is None else snippet,
            terms=tuple(terms),
            story_sources=tuple(story_sources),
            matched=matched,
            title_generated=article.title_generated,
        )


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A template that parsed and uses only documented variables."""

    source: str
    name: str = "template"


@dataclass(frozen=True, slots=True)
class _Trusted:
    """Markup we built from escaped parts; the only output that skips escaping."""

    markup: str

    def __bool__(self) -> bool:
        return bool(self.markup)


class _Sandbox(ImmutableSandboxedEnvironment):
    """No internals, no mutation, no peeking into trusted links, no huge repetitions."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not isinstance(obj, _Trusted) and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*" and _repeat_size(left, right) > _MAX_REPEAT:
            raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _repeat_size(left: Any, right: Any) -> int:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            return len(seq) * count
    return 0


def compile_template(text: str, *, name: str = "template") -> CompiledTemplate:
    """Check a template at load time: syntax, filters and variable names.

    Raises TemplateError naming the problem and the line.
    """
    env = _environment("text", title=False)
    try:
        tree = env.parse(text)
        _template(text, "text", title=False)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{name}: {exc.message}", exc.lineno) from exc
    unknown = meta.find_undeclared_variables(tree) - set(VARIABLES) - set(env.globals)
    if unknown:
        first = sorted(unknown)[0]
        known = ", ".join(VARIABLES)
        raise TemplateError(
            f"{name}: unknown variable {first!r} (known: {known})", _name_line(tree, first)
        )
    return CompiledTemplate(text, name)


def render_message(
    context: AlertContext,
    markup: Markup,
    title_template: str | CompiledTemplate | None = None,
    body_template: str | CompiledTemplate | None = None,
    *,
    limit: int | None = None,
) -> Message:
    """Title and body for one target. Over-long bodies lose snippet/lede text first, then
    are cut at a word boundary; either way they end with the article link.

    `limit` defaults to the markup's (pass `limit_for(url)` for per-service limits).
    """
    title = _compiled(title_template, DEFAULT_TITLE, "title_template")
    body = _compiled(body_template, DEFAULT_BODIES[markup], "body_template")
    rendered_title = clean_text(_render(title, _variables(context, markup), markup, title=True))
    rendered_title = fit_title(rendered_title, markup)
    limit = limit_for(markup) if limit is None else limit
    return Message(rendered_title, _fitted_body(body, context, markup, limit))


def _compiled(template: str | CompiledTemplate | None, default: str, name: str) -> CompiledTemplate:
    if template is None:
        return CompiledTemplate(default, name)
    if isinstance(template, CompiledTemplate):
        return template
    return compile_template(template, name=name)


def _fitted_body(
    template: CompiledTemplate, context: AlertContext, markup: Markup, limit: int
) -> str:
    """The body within `limit`: first the longest snippet/lede that fits (binary search),
    else the body cut at a word boundary; either way it ends with the article link."""

    def body_at(width: int | None) -> str:
        shorter = context if width is None else _shrink(context, width)
        return _render(template, _variables(shorter, markup), markup, title=False)

    body = body_at(None)
    if measure(body, markup) <= limit:
        return body
    link = link_line(context.url, markup)
    low, high, best = 0, max(len(context.snippet), len(context.lede)) - 1, None
    while low <= high:
        middle = (low + high) // 2
        candidate = body_at(middle)
        if measure(candidate, markup) <= limit:
            low, best = middle + 1, candidate
        else:
            high = middle - 1
    if best is not None and best.endswith(link):
        return best
    return fit(body, limit, link, markup=markup)


def _shrink(context: AlertContext, width: int) -> AlertContext:
    """The context with snippet and lede cut to `width` characters at a word boundary."""
    return dataclasses.replace(
        context, snippet=shorten(context.snippet, width), lede=shorten(context.lede, width)
    )


def _render(
    template: CompiledTemplate, variables: Mapping[str, Any], markup: Markup, *, title: bool
) -> str:
    try:
        text = _template(template.source, markup, title=title).render(variables)
    except SecurityError as exc:
        raise TemplateError(f"{template.name}: unsafe operation: {exc}", _line(exc)) from exc
    except UndefinedError as exc:
        raise TemplateError(f"{template.name}: {exc}", _line(exc)) from exc
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{template.name}: {exc.message}", exc.lineno) from exc
    except Exception as exc:  # any error inside a template is the template's
        message = f"{template.name}: {type(exc).__name__}: {exc}"
        raise TemplateError(message, _line(exc)) from exc
    return _BLANK_LINES.sub(
        lambda m: "\n" if m.group().startswith((" ", "\t")) else "\n\n", text
    ).strip()


def _variables(context: AlertContext, markup: Markup) -> dict[str, Any]:
    url = safe_url(context.url)
    title = shorten(context.title, BODY_TITLE_WIDTH)
    published = (
        f"{context.published.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if context.published else ""
    )
    section = tuple(clean_text(part) for part in context.section if clean_text(part))
    byline = " · ".join(
        part for part in (clean_text(context.source), published, " › ".join(section)) if part
    )
    terms = tuple(clean_text(term) for term in context.terms)
    return {
        "title": title,
        "title_generated": context.title_generated,
        "url": url,
        "source": clean_text(context.source),
        "published": published,
        "published_at": context.published.astimezone(UTC) if context.published else None,
        "section": section,
        "byline": byline,
        "lede": clean_text(context.lede),
        "snippet": clean_text(context.snippet) or clean_text(context.lede),
        "terms": terms,
        "matched": clean_text(context.matched) or ", ".join(terms),
        "rule": clean_text(context.rule),
        "story_sources": tuple(clean_text(name) for name in context.story_sources),
        "title_link": _Trusted(_title_link(title, url, markup)),
        "link": _Trusted(link_line(url, markup)),
        "markup": markup,
        "kind": markup,  # the older name of `markup`, kept for templates written with it
    }


def _title_link(title: str, url: str, markup: Markup) -> str:
    label = escape(title, markup)
    if not url:
        return label
    if markup in ("slack", "markdown"):
        return f"[{label}]({url})"
    if markup == "html":
        return f'<a href="{escape(url, "html")}">{label}</a>'
    return label


@lru_cache(maxsize=8)
def _environment(markup: Markup, *, title: bool) -> _Sandbox:
    escaper = partial(escape_title if title else escape, markup=markup)
    return _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,  # finalize escapes every output for the target's markup instead
        finalize=_finalizer(escaper),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=256)
def _template(source: str, markup: Markup, *, title: bool) -> Template:
    return _environment(markup, title=title).from_string(source)


def _finalizer(escaper: Callable[[str], str]) -> Callable[[Any], str]:
    def finalize(value: Any) -> str:
        if isinstance(value, _Trusted):
            return value.markup
        if value is None:
            return ""
        if isinstance(value, list | tuple):
            return escaper(", ".join(str(item) for item in value))
        return escaper(str(value))

    return finalize


def _line(exc: BaseException) -> int | None:
    """The template line of an error raised while rendering (Jinja rewrites tracebacks)."""
    line = None
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == "<template>":
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


def _name_line(tree: nodes.Template, name: str) -> int | None:
    for node in tree.find_all(nodes.Name):
        if node.name == name:
            return node.lineno
    return None

"""HTML fragments (feed content, summaries) to text blocks, without any network access."""

from __future__ import annotations

import re
import threading

import lxml.html
from lxml import etree

from monitor.model import Block, BlockKind, clean_text

# clean_text is monitor.model's (the one cleaner), re-exported for the sources modules.
__all__ = ["clean_text", "html_parser", "html_to_blocks", "html_to_text"]

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCK_TAGS = {"p", "div", "section", "article", "blockquote", "ul", "ol", "li", "pre", "figure"}
_SKIPPED = {"script", "style", "noscript", "template", "iframe", "svg", "button", "form"}
_PARSERS = threading.local()


def html_to_text(fragment: str) -> str:
    return " ".join(block.text for block in html_to_blocks(fragment))


def html_to_blocks(fragment: str) -> tuple[Block, ...]:
    """Paragraphs, headings, quotes and list items of an HTML fragment, in document order."""
    if not fragment.strip():
        return ()
    if "<" not in fragment:
        return _plain_blocks(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div", parser=html_parser())
    except (etree.ParserError, ValueError):
        return _plain_blocks(re.sub(r"<[^>]*>", " ", fragment))
    blocks: list[Block] = []
    _collect(root, blocks)
    return tuple(blocks)


def _plain_blocks(text: str) -> tuple[Block, ...]:
    paragraphs = (clean_text(part) for part in re.split(r"\n\s*\n", text))
    return tuple(Block("paragraph", part) for part in paragraphs if part)


def _collect(element: lxml.html.HtmlElement, blocks: list[Block]) -> None:
    """Emit a block per block-level element; inline runs between blocks become paragraphs."""
    pending: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in _SKIPPED or not tag:
            pending.append(child.tail or "")
            continue
        if tag in _HEADINGS or tag in _BLOCK_TAGS or (tag == "br" and _ends_paragraph(child)):
            _flush(pending, "paragraph", blocks)
            _emit_block(child, tag, blocks)
            pending = [child.tail or ""]
        else:
            pending.append(_inline_text(child))
            pending.append(child.tail or "")
    _flush(pending, "paragraph", blocks)


def _ends_paragraph(br: lxml.html.HtmlElement) -> bool:
    following = br.getnext()
    return following is not None and following.tag == "br"


def _emit_block(element: lxml.html.HtmlElement, tag: str, blocks: list[Block]) -> None:
    if tag in _HEADINGS:
        _flush([_inline_text(element)], "heading", blocks)
    elif tag == "blockquote":
        _flush([_inline_text(element)], "quote", blocks)
    elif tag in ("ul", "ol"):
        for item in element.iter("li"):
            _flush([_inline_text(item)], "list", blocks)
    elif tag == "li":
        _flush([_inline_text(element)], "list", blocks)
    elif tag == "br":
        return
    elif any(
        isinstance(c.tag, str) and (c.tag in _BLOCK_TAGS or c.tag in _HEADINGS) for c in element
    ):
        _collect(element, blocks)
    else:
        _flush([_inline_text(element)], "paragraph", blocks)


def _inline_text(element: lxml.html.HtmlElement) -> str:
    if not len(element):
        return element.text or ""
    parts: list[str] = []
    for node in element.iter():
        if isinstance(node.tag, str) and node.tag in _SKIPPED:
            continue
        if node is not element and node.tag == "br":
            parts.append(" ")
        if node.text and not _inside_skipped(node, element):
            parts.append(node.text)
        if node is not element and node.tail and not _inside_skipped(node.getparent(), element):
            parts.append(node.tail)
    return "".join(parts)


def _inside_skipped(node: lxml.html.HtmlElement | None, stop: lxml.html.HtmlElement) -> bool:
    while node is not None and node is not stop:
        if isinstance(node.tag, str) and node.tag in _SKIPPED:
            return True
        node = node.getparent()
    return False


def _flush(parts: list[str], kind: BlockKind, blocks: list[Block]) -> None:
    text = clean_text("".join(parts))
    if text:
        blocks.append(Block(kind, text))


def html_parser() -> lxml.html.HTMLParser:
    """This thread's HTML parser: comments and processing instructions dropped."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = lxml.html.HTMLParser(
            remove_comments=True, remove_pis=True, collect_ids=False
        )
        # Every element an HtmlElement, chosen in C: lxml.html's own lookup is a Python
        # call per element proxy (form controls get their own classes, which we never use;
        # forms are chrome), about a tenth of a page's extraction time.
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=lxml.html.HtmlElement,
                comment=lxml.html.HtmlComment,
                pi=lxml.html.HtmlProcessingInstruction,
                entity=lxml.html.HtmlEntity,
            )
        )
    return parser

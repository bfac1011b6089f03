from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.matching.stories import (
    SHORT_SHINGLES,
    THRESHOLD,
    Fingerprint,
    boilerplate,
    find_story,
    fingerprint,
    resemblance,
    same_story,
)
from monitor.model import Article
from monitor.rules import tokenize

STORIES = Path(__file__).resolve().parent.parent / "seeds" / "stories"
MANIFEST: dict[str, Any] = json.loads((STORIES / "cases.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["pairs"]
RECENT_ITEMS: dict[str, list[str]] = MANIFEST["recent_items"]

SAME_TOPIC = [
    "neg-missile.json",
    "neg-summit-pledge.json",
    "neg-abductee-families.json",
    "neg-kim-yo-jong.json",
    "neg-follow-up.json",
    "unrelated.json",
]
COPIES = [
    "syndicated.json",
    "republished.json",
    "truncated.json",
    "paragraph-added.json",
    "paragraph-removed.json",
    "edited.json",
]


@cache
def load(name: str) -> Article:
    return Article.from_json(json.loads((STORIES / name).read_text(encoding="utf-8")))


@cache
def source_boilerplate(source: str) -> frozenset[str]:
    """The boilerplate of a source's recent items in the manifest (none if it lists none)."""
    return boilerplate(load(name) for name in RECENT_ITEMS.get(source, ()))


@cache
def fp(name: str) -> Fingerprint:
    article = load(name)
    return fingerprint(article, source_boilerplate(article.source))


def headline(title: str, source: str = "asia-dispatch") -> Fingerprint:
    return fingerprint(
        Article(id=title, url=f"https://{source}.example/", source=source, title=title)
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['a']}~{c['b']}")
def test_case_pairs_are_classified_as_expected(case: dict[str, Any]) -> None:
    a, b = fp(case["a"]), fp(case["b"])
    assert same_story(a, b) is case["expected_same"], resemblance(a, b)
    assert same_story(b, a) is case["expected_same"]


def test_the_manifest_covers_every_pattern_and_fixture() -> None:
    patterns = {case["pattern"] for case in CASES}
    assert patterns == {
        "syndicated",
        "republished",
        "truncated",
        "paragraph-added",
        "paragraph-removed",
        "edited",
        "combined",
        "headline-only",
        "same-topic",
        "unrelated",
        "boilerplate",
    }
    named = {case[key] for case in CASES for key in ("a", "b")}
    named |= {name for names in RECENT_ITEMS.values() for name in names}
    on_disk = {path.name for path in STORIES.glob("*.json")} - {"cases.json"}
    assert named == on_disk


def test_long_texts_keep_a_margin_around_the_threshold() -> None:
    for case in CASES:
        a, b = fp(case["a"]), fp(case["b"])
        if min(a.shingles, b.shingles) < SHORT_SHINGLES:
            continue
        if case["expected_same"]:
            assert resemblance(a, b) >= THRESHOLD + 0.1, case
        else:
            assert resemblance(a, b) <= THRESHOLD - 0.1, case


def test_resemblance_is_symmetric_and_one_for_a_copy() -> None:
    assert resemblance(fp("seed.json"), fp("syndicated.json")) == 1.0
    for case in CASES:
        a, b = fp(case["a"]), fp(case["b"])
        assert resemblance(a, b) == resemblance(b, a)


@pytest.mark.parametrize("copy", COPIES)
def test_find_story_attaches_a_copy_to_its_story(copy: str) -> None:
    candidates = [(name, fp(name)) for name in SAME_TOPIC[:3]]
    candidates += [("meeting", fp("seed.json"))]
    candidates += [(name, fp(name)) for name in SAME_TOPIC[3:]]
    assert find_story(fp(copy), candidates) == "meeting"


@pytest.mark.parametrize("story", SAME_TOPIC)
def test_find_story_starts_a_new_story_for_another_story_on_the_topic(story: str) -> None:
    candidates = [(name, fp(name)) for name in ["seed.json", *COPIES, *SAME_TOPIC] if name != story]
    assert find_story(fp(story), candidates) is None


def test_find_story_prefers_the_most_resembling_candidate() -> None:
    new = fp("edited.json")
    names = ["neg-follow-up.json", "truncated.json", "republished.json", "paragraph-removed.json"]
    best = max(names[1:], key=lambda name: resemblance(new, fp(name)))
    assert find_story(new, [(name, fp(name)) for name in names]) == best


def test_find_story_without_candidates() -> None:
    assert find_story(fp("seed.json"), []) is None


def test_bytes_round_trip() -> None:
    original = fp("edited.json")
    data = original.to_bytes()
    assert len(data) < 600
    restored = Fingerprint.from_bytes(data)
    assert restored == original
    assert resemblance(restored, fp("seed.json")) == resemblance(original, fp("seed.json"))


@pytest.mark.parametrize("data", [b"", b"\x01" * 100, b"\x09" + bytes(516)])
def test_from_bytes_rejects_other_data(data: bytes) -> None:
    with pytest.raises(ValueError):
        Fingerprint.from_bytes(data)


def test_fingerprints_are_stable_across_runs_and_versions() -> None:
    """Stored fingerprints stay comparable: a change here needs a new format version."""
    data = fp("seed.json").to_bytes()
    assert fp("seed.json").shingles == 363
    assert hashlib.sha256(data).hexdigest()[:16] == "ebfe353933162a3f"


def test_identical_headline_only_items_are_one_story() -> None:
    a = headline("Japan, North Korea held meeting in May – S Korean newspaper")
    b = headline("JAPAN, NORTH KOREA HELD MEETING IN MAY - S KOREAN NEWSPAPER", "seoul-wire")
    assert same_story(a, b)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "North Korea says it will reject any contact with Japan",
            "North Korea says it will reject any contact with South Korea",
        ),
        (
            "Japan, North Korea held meeting in May – S Korean newspaper",
            "Japan, North Korea held meeting in Mongolia – S Korean newspaper",
        ),
        (
            "Kishida seeks summit with Kim",
            "Kishida seeks summit with Kim Jong Un, abductee families",
        ),
    ],
)
def test_different_headline_only_items_on_a_topic_are_not_merged(first: str, second: str) -> None:
    assert not same_story(headline(first), headline(second))


def test_an_item_without_text_matches_nothing() -> None:
    empty = headline("")
    assert empty.shingles == 0
    assert not same_story(empty, empty)
    assert find_story(empty, [("empty", empty)]) is None


def test_the_title_counts_only_for_short_texts() -> None:
    seed = load("seed.json")
    assert fingerprint(replace(seed, title="Another headline")) == fp("seed.json")
    teaser = replace(seed, body=())
    assert fingerprint(replace(teaser, title="Another headline")) != fingerprint(teaser)


BLURBS = sorted(name for name in RECENT_ITEMS["daily-ledger"] if load(name).body == ())


def test_a_site_blurb_alone_would_make_different_stories_one() -> None:
    """Why boilerplate is removed: without it the daily-ledger blurb merges every item."""
    plain = [fingerprint(load(name)) for name in BLURBS]
    assert len(BLURBS) >= 8
    assert all(same_story(plain[0], other) for other in plain[1:])


def test_items_whose_only_text_is_boilerplate_are_each_their_own_story() -> None:
    candidates: list[tuple[str, Fingerprint]] = []
    for name in BLURBS:
        assert find_story(fp(name), candidates) is None, name
        candidates.append((name, fp(name)))


def test_an_item_whose_only_text_is_boilerplate_compares_by_its_title() -> None:
    assert fp("blurb-meeting.json") == fingerprint(replace(load("blurb-meeting.json"), lede=""))


def test_boilerplate_is_text_a_source_carries_under_different_titles() -> None:
    found = source_boilerplate("daily-ledger")
    seed_text = fingerprint(load("seed.json"))
    assert "read the latest from the" in found
    assert fp("blurb-syndicated.json").shingles == seed_text.shingles
    assert resemblance(fp("blurb-syndicated.json"), seed_text) == 1.0


def test_copies_of_one_story_under_two_titles_are_not_boilerplate() -> None:
    """Fewer than three titles: an outlet carrying a story twice keeps its text."""
    copies = [load("seed.json"), load("truncated.json"), load("republished.json")]
    assert len({tuple(tokenize(a.title)) for a in copies}) == 2
    assert boilerplate(copies) == frozenset()
    assert boilerplate([*copies, load("edited.json")]) != frozenset()


def test_boilerplate_is_deterministic_and_order_free() -> None:
    items = [load(name) for name in RECENT_ITEMS["daily-ledger"]]
    assert boilerplate(items) == boilerplate(reversed(items)) == source_boilerplate("daily-ledger")


def test_blurb_stories_arriving_one_a_poll_are_each_a_new_story() -> None:
    """A blurb is boilerplate from a source's second item on: the first two blurb-only
    items are not one story because the blurb had not yet been seen under three titles."""
    names = ["blurb-drills.json", "blurb-fishing.json", "blurb-football.json",
             "blurb-missile.json"]  # fmt: skip
    items = [load(name) for name in names]
    stored: list[tuple[str, Fingerprint]] = []
    for n, item in enumerate(items):
        story_print = fingerprint(item, boilerplate(items[: n + 1]))
        assert find_story(story_print, stored) is None, item.title
        stored.append((item.id, story_print))

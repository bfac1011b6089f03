"""The layout a newcomer walks: docs/design.md's map is the import-linter contracts and the
package, line for line, and the package keeps its size rules."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "monitor"
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    start = DESIGN.index(heading)
    end = DESIGN.find("\n#", start + len(heading))
    return DESIGN[start : end if end >= 0 else None]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_the_layer_diagram_is_the_layers_contract_line_for_line() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    [layers] = [c["layers"] for c in contracts if c["type"] == "layers"]
    block = re.search(r"\n\n((?:    \S.*\n)+)", _section("## Layers"))
    assert block is not None
    drawn = [re.split(r"\s{2,}", line.strip())[0] for line in block.group(1).splitlines()]
    assert drawn == layers


def test_every_module_is_in_the_module_map() -> None:
    named = set(re.findall(r"`(monitor/[\w/]+\.(?:py|c))`", _section("### Module map")))
    missing = [
        str(p.relative_to(ROOT)) for p in _modules() if str(p.relative_to(ROOT)) not in named
    ]
    assert missing == [], "add these to docs/design.md's module map"
    assert all((ROOT / path).exists() for path in named), "the map names a module that is gone"


def test_at_most_eight_modules_directly_in_monitor() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 8


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if init.parent == PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert re.search(r"\bmay (?:also )?import\b", doc, re.IGNORECASE), init

"""Built-in example networks (assets/templates/*.json) and their descriptions."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .graph import Graph

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "assets" / "templates"


@lru_cache(maxsize=1)
def _index() -> dict:
    return json.loads((TEMPLATE_DIR / "index.json").read_text(encoding="utf-8"))


def template_names() -> list[str]:
    return list(_index())


def template_info(name: str) -> dict:
    """{"description": one paragraph, "dataset": the built-in dataset it trains on}."""
    return _index()[name]


def load_template(name: str) -> Graph:
    if name not in _index():
        raise KeyError(f"unknown template {name!r} (built-in: {', '.join(template_names())})")
    return Graph.load_json(TEMPLATE_DIR / f"{name}.json")

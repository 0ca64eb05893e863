"""JSON text written piece by piece, laid out exactly as json.dumps(indent=2) lays it out.

Why not json.dumps: it builds the whole text at once, and with an indent it runs
Python's own encoder, whose every call leaves a cycle of closures (about 2 KB) that only
a full garbage collection frees. A listing of n incidents, or a report whose evidence
took thousands of LookupEvents pages, would hold all of it. Here a list may be Lazy: its
items are made only as they are written, so the memory is that of one item.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any


class Lazy:
    """A JSON list whose items are made as they are written (read from the journal, say);
    `items` is called once per writing."""

    def __init__(self, items: Callable[[], Iterable[Any]]) -> None:
        self.items = items


def _key(key: Any) -> str:
    """A mapping's key as json.dumps writes it."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return json.dumps(key) if isinstance(key, int | float) else str(key)


def pieces(value: Any, pad: str = "", text: Callable[[str], str] = str) -> Iterator[str]:
    """The text of `value` as json.dumps(value, indent=2, default=str), continued at
    `pad`, in pieces no larger than one scalar with its key. `text` rewrites each string
    value first (cli.output.pasteable: the printed commands name --state)."""
    inner = pad + "  "
    if isinstance(value, Lazy):
        yield from _items(iter(value.items()), pad, text)
    elif isinstance(value, Mapping):
        if not value:
            yield "{}"
            return
        separator = "{\n"
        for key, item in value.items():
            yield f"{separator}{inner}{json.dumps(_key(key))}: "
            yield from pieces(item, inner, text)
            separator = ",\n"
        yield f"\n{pad}}}"
    elif isinstance(value, list | tuple):
        yield from _items(iter(value), pad, text)
    else:
        yield json.dumps(text(value) if isinstance(value, str) else value, default=str)


def _items(items: Iterator[Any], pad: str, text: Callable[[str], str]) -> Iterator[str]:
    separator = None
    for item in items:
        yield ("[\n" if separator is None else separator) + pad + "  "
        yield from pieces(item, pad + "  ", text)
        separator = ",\n"
    yield "[]" if separator is None else f"\n{pad}]"


def chunks(parts: Iterable[str], size: int = 1 << 13) -> Iterator[str]:
    """`parts` joined into pieces of about `size` characters: a few writes, not one per
    scalar, and never more than `size` held."""
    held: list[str] = []
    length = 0
    for part in parts:
        held.append(part)
        length += len(part)
        if length >= size:
            yield "".join(held)
            held, length = [], 0
    if held:
        yield "".join(held)


__all__ = ["Lazy", "chunks", "pieces"]

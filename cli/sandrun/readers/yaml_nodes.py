"""YAML text to nodes, the way `yaml.compose(text, Loader=yaml.SafeLoader)` does it, without its recursion.

PyYAML's composer calls itself once per level of nesting, so `[[[[...]]]]` 500 deep ends in `RecursionError`.
This one keeps its own stack, refuses documents nested more than `MAX_DEPTH` levels (no recipe needs more
than five), and reads the events with libyaml (`yaml.CSafeLoader`, about five times faster) when PyYAML was
built with it. libyaml words some errors differently, so a document it refuses is read again with the
pure-Python loader, whose messages are the ones users see: for a document both accept, nodes and marks are
the same. libyaml is more lenient with a few malformed documents that PyYAML refuses (a tab inside a plain
scalar, `|2#comment`, `{a:, b}`): those are read as libyaml reads them.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml import (
    AliasEvent,
    MappingEndEvent,
    MappingNode,
    MappingStartEvent,
    Node,
    ScalarEvent,
    ScalarNode,
    SequenceEndEvent,
    SequenceNode,
    SequenceStartEvent,
    StreamEndEvent,
)

MAX_DEPTH = 100
_FAST: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None
_NO_KEY = object()
ComposerError = yaml.composer.ComposerError


def compose(text: str) -> Node | None:
    """The root node of the single YAML document in `text` (None if it holds none).

    Raises `yaml.YAMLError` (a `MarkedYAMLError` with the place, or a `ReaderError` for a character YAML
    does not allow) exactly as `yaml.compose` with `yaml.SafeLoader` would, and `ComposerError` for a
    document nested too deeply."""
    if _FAST is not None and "\ufeff" not in text:  # libyaml leaves a BOM out of its offsets
        try:
            return compose_with(_FAST, text)
        except yaml.YAMLError:
            pass  # said again below in the pure-Python loader's words
    return compose_with(yaml.SafeLoader, text)


def compose_with(loader_class: type[yaml.SafeLoader], text: str) -> Node | None:
    """`compose` with one given loader class (for tests that compare the two)."""
    loader: Any = loader_class(text)  # PyYAML's loaders are not typed, and libyaml's marks are other classes
    try:
        loader.get_event()  # stream start
        if loader.check_event(StreamEndEvent):
            return None
        loader.get_event()  # document start
        root = _document(loader)
        loader.get_event()  # document end
        if not loader.check_event(StreamEndEvent):
            event = loader.get_event()
            raise ComposerError(
                "expected a single document in the stream",
                root.start_mark,
                "but found another document",
                event.start_mark,
            )
        return root
    finally:
        loader.dispose()


def construct(node: yaml.Node) -> object:
    """The Python value of a scalar node, by the same rules as `yaml.safe_load`."""
    return yaml.constructor.SafeConstructor().construct_object(node)


def _document(loader: Any) -> Node:
    """The nodes of one document, from its events, with PyYAML's tags, styles, marks and anchor rules."""
    anchors: dict[str, Node] = {}
    stack: list[tuple[Node, list[object]]] = []  # open collections; for a mapping, the key waiting its value
    while True:
        event = loader.get_event()
        if isinstance(event, (SequenceEndEvent, MappingEndEvent)):
            node = stack.pop()[0]
            node.end_mark = event.end_mark
        elif isinstance(event, AliasEvent):
            if event.anchor not in anchors:
                mark: Any = event.start_mark
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", mark)
            node = anchors[event.anchor]
        else:
            if event.anchor is not None and event.anchor in anchors:
                raise ComposerError(
                    f"found duplicate anchor {event.anchor!r}; first occurrence",
                    anchors[event.anchor].start_mark,
                    "second occurrence",
                    event.start_mark,
                )
            node = _new_node(loader, event)
            if event.anchor is not None:
                anchors[event.anchor] = node
            if not isinstance(event, ScalarEvent):
                if len(stack) >= MAX_DEPTH:
                    problem = f"the document is nested more than {MAX_DEPTH} levels deep"
                    raise ComposerError(None, None, problem, event.start_mark)
                stack.append((node, [_NO_KEY]))
                continue
        if not stack:
            return node
        parent, key = stack[-1]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif key[0] is _NO_KEY:
            key[0] = node
        else:
            parent.value.append((key[0], node))
            key[0] = _NO_KEY


def _new_node(loader: Any, event: Any) -> Node:
    """The node a scalar, sequence-start or mapping-start event begins (collections still empty)."""
    tag, start, end = event.tag, event.start_mark, event.end_mark  # libyaml's marks are not error.Mark
    if isinstance(event, ScalarEvent):
        if tag is None or tag == "!":
            tag = loader.resolve(ScalarNode, event.value, event.implicit)
        # libyaml says "" for a plain scalar, PyYAML None
        return ScalarNode(tag, event.value, start, end, style=event.style or None)
    assert isinstance(event, (SequenceStartEvent, MappingStartEvent)), event
    kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
    if tag is None or tag == "!":
        tag = loader.resolve(kind, None, event.implicit)
    return kind(tag, [], start, None, flow_style=event.flow_style)

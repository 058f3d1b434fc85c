"""The order types are loaded in: every type after the types its entities must refer to.

A cycle of references is allowed only through an optional one: an entity on it can be
created with that reference empty and pointed later. A cycle of required references means no
entity on it could ever be created first, so the schema is refused.
"""

from __future__ import annotations

from eventvault.schemadoc.model import TypeSpec


def dependency_order(types: list[TypeSpec]) -> tuple[TypeSpec, ...] | None:
    """Declaration order, moved only as references need. A type is placed once every type it
    references is (optional self-references aside); on a cycle, one whose unplaced references
    are all optional goes first. None: a cycle of required references."""
    placed: set[str] = set()
    order: list[TypeSpec] = []
    pending = list(types)
    while pending:
        ready = next((t for t in pending if all(
            r.target in placed or (r.target == t.name and not r.required)
            for r in t.references)), None)
        if ready is None:
            ready = next((t for t in pending if all(
                r.target in placed or not r.required for r in t.references)), None)
        if ready is None:
            return None
        pending.remove(ready)
        placed.add(ready.name)
        order.append(ready)
    return tuple(order)


def required_cycle(types: list[TypeSpec]) -> list[str]:
    """One cycle of required references, as type names, for the error message."""
    edges = {t.name: [r.target for r in t.references if r.required] for t in types}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return []
        for target in edges.get(node, []):
            if found := visit(target, [*path, node]):
                return found
        done.add(node)
        return []

    for start in edges:
        if found := visit(start, []):
            return found
    return []

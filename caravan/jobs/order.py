"""Dependency ordering of jobs: what "start all" starts first, and cycles to refuse."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def start_order(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """Every job of `dependencies` once, each after the jobs it depends on.

    Dependencies on jobs outside the mapping are ignored (they are not being started).
    Ties are broken by name, so the order is stable. A cycle, which the definition
    routes refuse but kubectl could still write, does not block: its jobs come in name
    order once everything outside it has been placed.
    """
    remaining = {
        name: {d for d in deps if d in dependencies and d != name}
        for name, deps in dependencies.items()
    }
    order: list[str] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            ready = [min(remaining)]  # a cycle: break it at its first name
        for name in ready:
            del remaining[name]
            order.append(name)
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def stop_order(dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    """The reverse of `start_order`: a job stops before the jobs it depends on."""
    return list(reversed(start_order(dependencies)))


def find_cycle(dependencies: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One dependency cycle as a path `[a, b, ..., a]`, or None when there is none."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done or name not in dependencies:
            return None
        for dependency in sorted(dependencies[name]):
            found = visit(dependency, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(dependencies):
        cycle = visit(name, [])
        if cycle:
            return cycle
    return None

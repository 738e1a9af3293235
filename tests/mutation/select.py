"""Which tests a mutant runs: the ones that executed its statement, most successful killers first."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import coverage


@dataclass
class CoverageMap:
    """Per file (repository-relative) and line, the node ids of the tests that executed it.

    ``""`` stands for "executed while importing" (module-level code, ``def``
    lines, default values): such a mutant runs every test of its module.
    """

    lines: dict[str, dict[int, list[str]]]
    durations: dict[str, float]
    kills: dict[str, int] = field(default_factory=dict)

    @classmethod
    def collect(cls, data_dir: Path, root: Path, files: Iterable[str]) -> CoverageMap:
        cov = coverage.Coverage(data_file=str(data_dir / "coverage"))
        cov.combine(data_paths=[str(data_dir)], keep=True)
        data = cov.get_data()
        lines: dict[str, dict[int, list[str]]] = {}
        for name in files:
            found = data.contexts_by_lineno(str(root / name))
            lines[name] = {line: sorted(contexts) for line, contexts in found.items()}
        durations: dict[str, float] = {}
        for part in data_dir.glob("durations-*.json"):
            durations.update(json.loads(part.read_text()))
        return cls(lines, durations)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"lines": self.lines, "durations": self.durations}))

    @classmethod
    def load(cls, path: Path) -> CoverageMap:
        raw = json.loads(path.read_text())
        lines = {name: {int(line): tests for line, tests in by_line.items()} for name, by_line in raw["lines"].items()}
        return cls(lines, raw["durations"])

    def tests_for(self, name: str, source: str, start_line: int, end_line: int) -> list[str]:
        """The tests to run for a mutant spanning ``start_line..end_line``; empty: no test executes it."""
        first = _statement_start(source, start_line)
        found: set[str] = set()
        for line in range(first, end_line + 1):
            found.update(self.lines.get(name, {}).get(line, ()))
        if "" in found:  # evaluated on import: every test of the module may see it
            found = {test for by_line in self.lines.values() for tests in by_line.values() for test in tests}
        found.discard("")
        return sorted(found, key=lambda test: (-self.kills.get(test, 0), self.durations.get(test, 1.0), test))

    def timeout(self, tests: list[str]) -> float:
        return min(1200.0, 30.0 + 3.0 * sum(self.durations.get(test, 1.0) for test in tests))


def _statement_start(source: str, line: int) -> int:
    """The first line of the innermost statement containing ``line`` (coverage reports statements there)."""
    best = line
    best_span = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            span = (node.end_lineno or node.lineno) - node.lineno
            if best_span is None or span < best_span or (span == best_span and node.lineno > best):
                best, best_span = node.lineno, span
    return best

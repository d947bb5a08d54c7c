"""The table the fault suite prints: faults injected, then invariants held."""

from collections import Counter
from collections.abc import Iterable, Mapping

from tests.faults.invariants import Check
from tests.faults.schedule import FaultRecord


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render(
    title: str,
    faults: Iterable[FaultRecord],
    checks: Iterable[Check],
    answers: Mapping[str, Counter[str]],
) -> str:
    fault_rows = [
        [f.kind, f.target, f"{f.at_s:.1f} s", f"{f.took_s:.1f} s", f.outcome] for f in faults
    ]
    answer_rows = [
        [op, ", ".join(f"{what} {n}" for what, n in sorted(counts.items()))]
        for op, counts in sorted(answers.items())
    ]
    check_rows = [[c.name, "held" if c.ok else "BROKEN", c.detail] for c in checks]
    return "\n\n".join(
        [
            title,
            _table(["fault", "target", "at", "took", "outcome"], fault_rows),
            _table(
                ["operation", "answers (refused: gateway down; dropped: cut mid-request)"],
                answer_rows,
            ),
            _table(["invariant", "result", "detail"], check_rows),
        ]
    )

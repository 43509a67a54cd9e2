"""The table bench/run prints, from the BENCHJSON lines its wrk scripts wrote (issue 7).

    python bench/report.py OUT_DIR

OUT_DIR holds put_N.out and bare_N.out for each round N (the PUT and the bare handler take
turns), get.out, create.out and hot.out (wrk's output each) and verify.out (`accounting
verify`'s exit status on its last line). The table shows the median round by PUT / bare ratio;
each round is listed below it, and the targets are judged on the medians of the rounds (the
ratio, the PUT's p99). Exit status 0 when every target is met, 1 when one is missed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PUT_RATIO_TARGET = 0.3
PUT_P99_TARGET_MS = 50.0
HOT_WRITES_TARGET = 100.0
HOT_P99_TARGET_MS = 200.0
HOT_EXPECTED = {"409 order-not-settled"}  # SPEC 6 rule 2: while the other thread invoices


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    statuses: dict[str, int]
    kinds: dict[str, int]
    app_cpu: float  # CPU seconds the server's processes spent during the run
    pg_cpu: float  # CPU seconds PostgreSQL spent during the run

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_ms(self, seconds: float) -> float:
        return 1000 * seconds / max(self.requests, 1)

    @property
    def non_2xx(self) -> int:
        answered = sum(self.statuses.values())
        ok = sum(n for status, n in self.statuses.items() if status.startswith("2"))
        return answered - ok + self.socket_errors


def _cpu(path: Path) -> tuple[float, float]:
    """NAME.cpu: "before app=S pg=S after app=S pg=S" -> (app seconds, pg seconds)."""
    words = path.read_text().split()
    values = [float(w.split("=")[1]) for w in words if "=" in w]
    return values[2] - values[0], values[3] - values[1]


def read(path: Path) -> Run:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("BENCHJSON ")]
    if not lines:
        raise SystemExit(f"{path}: wrk printed no BENCHJSON line:\n{path.read_text()}")
    data: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCHJSON "))
    return Run(
        data["name"],
        data["requests"],
        data["duration_us"] / 1e6,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["max_us"] / 1000,
        data["socket_errors"],
        data["statuses"],
        data["kinds"],
        *_cpu(path.with_suffix(".cpu")),
    )


def _cost(runs: list[Run]) -> float:
    """Milliseconds of CPU (the server's and PostgreSQL's) per request over these runs."""
    requests = sum(r.requests for r in runs)
    return 1000 * sum(r.app_cpu + r.pg_cpu for r in runs) / max(requests, 1)


def _codes(run: Run, skip: set[str]) -> str:
    odd = {k: v for k, v in sorted(run.kinds.items()) if k not in skip}
    return ", ".join(f"{k}: {v}" for k, v in odd.items()) or "-"


def _median(values: list[float]) -> float:
    """The middle value (of an even count, the upper of the two middle ones)."""
    return sorted(values)[len(values) // 2]


def main(out: Path) -> int:
    numbers = sorted(int(p.stem.removeprefix("put_")) for p in out.glob("put_*.out"))
    pairs = [(read(out / f"put_{n}.out"), read(out / f"bare_{n}.out")) for n in numbers]
    ratios = [put.rate / bare.rate for put, bare in pairs]
    ratio = _median(ratios)
    middle = ratios.index(ratio)
    put, bare = pairs[middle]
    get, create, hot = (read(out / f"{name}.out") for name in ("get", "create", "hot"))
    runs = {"put": put, "get": get, "create": create, "bare": bare, "hot": hot}
    header = (
        f"{'case':<44} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7}"
        f" {'app CPU':>8} {'PG CPU':>7}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "put": "PUT correction, 3-line paid invoice, refund",
        "get": "GET invoice",
        "create": "POST invoice (create, 3 lines)",
        "bare": "bare handler (lock, update, insert, commit)",
        "hot": "hot order: invoice + correct ONE order",
    }
    for name, run in runs.items():
        print(
            f"{labels[name]:<44} {run.requests:>8} {run.rate:>8.1f} {run.p50_ms:>7.1f} "
            f"{run.p99_ms:>7.1f} {run.non_2xx:>7} {run.cpu_ms(run.app_cpu):>8.2f} "
            f"{run.cpu_ms(run.pg_cpu):>7.2f}"
        )
    print(
        "(app CPU, PG CPU: milliseconds of CPU per request spent by the server's gunicorn "
        "processes and by PostgreSQL)"
    )
    print(f"(PUT and bare: round {middle + 1} of {len(pairs)}, the median by ratio)")
    print()
    print("round   PUT req/s  p50 ms  p99 ms   bare req/s  p99 ms   PUT / bare")
    for n, (p, b) in zip(numbers, pairs, strict=True):
        print(
            f"{n:>5} {p.rate:>11.1f} {p.p50_ms:>7.1f} {p.p99_ms:>7.1f} {b.rate:>12.1f} "
            f"{b.p99_ms:>7.1f} {p.rate / b.rate:>12.2f}"
        )
    put_p99 = _median([p.p99_ms for p, _ in pairs])
    print()
    print(f"PUT / bare (requests/s), median of {len(pairs)} rounds: {ratio:.2f}")
    print(f"PUT p99, median of {len(pairs)} rounds: {put_p99:.1f} ms")
    put_cost = _cost([p for p, _ in pairs])
    bare_cost = _cost([b for _, b in pairs])
    print(
        f"CPU per request over all rounds (app + PostgreSQL): PUT {put_cost:.2f} ms, "
        f"bare {bare_cost:.2f} ms, bare / PUT {bare_cost / put_cost:.2f}"
    )
    measured = {"get": get, "create": create}
    for n, (p, b) in zip(numbers, pairs, strict=True):
        measured.update({f"put_{n}": p, f"bare_{n}": b})
    for name, run in measured.items():
        if run.non_2xx:
            print(f"  {name}: non-2xx answers {_codes(run, {'ok'})}")

    written = hot.kinds.get("invoiced", 0) + hot.kinds.get("corrected", 0)
    hot_rate = written / hot.seconds
    expected = sum(hot.kinds.get(k, 0) for k in HOT_EXPECTED)
    unexpected = hot.non_2xx - expected
    print(
        f"hot order: {written} writes in {hot.seconds:.1f} s = {hot_rate:.1f} serialized "
        f"writes/s ({hot.kinds.get('invoiced', 0)} invoices, "
        f"{hot.kinds.get('corrected', 0)} corrections), p99 {hot.p99_ms:.1f} ms, "
        f"expected 409 order-not-settled: {expected}, unexpected non-2xx: {unexpected}"
    )
    if unexpected:
        print(f"  hot: {_codes(hot, {'invoiced', 'corrected', *HOT_EXPECTED})}")

    verify = (out / "verify.out").read_text().strip().splitlines()
    verified = bool(verify) and verify[-1] == "exit 0"
    print(f"accounting verify after the run: {verify[-2] if len(verify) > 1 else verify}")

    checks = [
        (f"PUT >= {PUT_RATIO_TARGET} x bare requests/s", ratio >= PUT_RATIO_TARGET),
        (f"PUT p99 < {PUT_P99_TARGET_MS:.0f} ms", put_p99 < PUT_P99_TARGET_MS),
        (
            "no unexpected non-2xx (PUT, GET, POST invoice, bare, hot)",
            all(r.non_2xx == 0 for r in measured.values()) and unexpected == 0,
        ),
        (f"hot order >= {HOT_WRITES_TARGET:.0f} writes/s", hot_rate >= HOT_WRITES_TARGET),
        (f"hot order p99 < {HOT_P99_TARGET_MS:.0f} ms", hot.p99_ms < HOT_P99_TARGET_MS),
        ("accounting verify clean", verified),
    ]
    print()
    for label, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

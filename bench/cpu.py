"""CPU seconds used so far by process trees (Linux /proc), for cost per request (issue 7).

    python bench/cpu.py NAME=PID [NAME=PID ...]      # prints NAME=SECONDS ...

For each PID: its own user+system time, that of its children it has waited for (cutime,
cstime: a worker gunicorn recycled, a PostgreSQL backend that closed), and that of every live
descendant. Read before and after a run, the difference is what that tree spent on the run,
whatever else the machine was doing at the time.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks incl. waited-for children) or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, utime + stime + cutime + cstime


def tree_seconds(root: int) -> float:
    children: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children[stat[0]].append(int(entry))
                ticks[int(entry)] = stat[1]
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / TICKS


if __name__ == "__main__":
    print(
        " ".join(f"{n}={tree_seconds(int(p)):.2f}" for n, p in (a.split("=") for a in sys.argv[1:]))
    )

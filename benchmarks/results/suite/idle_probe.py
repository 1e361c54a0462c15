"""How long a process at idle CPU priority waits while `make test` runs the real-time tests.

Run beside the suite, stop it with SIGTERM, read one JSON line::

    chrt --idle 0 python benchmarks/results/suite/idle_probe.py > probe.json &
    make test; kill %1

It sleeps 10 ms at a time and records every wake-up later than 50 ms past its due time.
"""

import json
import signal
import time

stop = False


def _stop(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, _stop)
gaps: list[float] = []
start = last = time.monotonic()
while not stop:
    time.sleep(0.01)
    now = time.monotonic()
    late = now - last - 0.01
    last = now
    if late > 0.05:
        gaps.append(round(late, 3))
gaps.sort()
print(json.dumps({"seconds": round(last - start), "gaps_over_50ms": len(gaps),
                  "worst": gaps[-5:], "over_1s": sum(g > 1 for g in gaps)}))  # fmt: skip

"""Many runs at once through one AsyncBoxerClient."""

import asyncio
import statistics
import time

from conftest import BUSYBOX

CMD = "sleep 0.2; echo {}"


async def test_fifty_concurrent_async_runs(aclient, api):
    # What one run costs end to end when it is the only one: its sandbox's
    # boot included, which wall_ms (the program's own time) leaves out.
    alone = []
    for i in range(5):
        t0 = time.monotonic()
        r = await aclient.run(BUSYBOX, ["sh", "-c", CMD.format(i)])
        alone.append(time.monotonic() - t0)
        assert r.ok and r.stdout == f"{i}\n"
    one = statistics.median(alone)

    t0 = time.monotonic()
    results = await asyncio.gather(*(
        aclient.run(BUSYBOX, ["sh", "-c", CMD.format(i)]) for i in range(50)))
    elapsed = time.monotonic() - t0
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(50)]
    assert all(r.ok for r in results)
    assert len({r.id for r in results}) == 50
    # They ran side by side on the pool's workers, not one after another,
    # which would take 50 lone runs' time.
    assert elapsed < 50 * one * 0.75, (elapsed, alone)

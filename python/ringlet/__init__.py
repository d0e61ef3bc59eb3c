"""ringlet: an asyncio event loop on ringlet's runtime (io_uring or epoll, a timer wheel, C++ ready queue).

    import ringlet
    ringlet.run(main())                # like asyncio.run(main()), on a ringlet loop

    loop = ringlet.new_event_loop()    # or a loop of your own
    ringlet.run(main, workers=4)       # four processes, one loop each, servers sharing ports (reuse_port=True)

docs/python.md describes the API, what runs in C++ and what comes from asyncio.
"""

from ._core import Handle, TimerHandle
from ._loop import EventLoopPolicy, Loop, install, new_event_loop, run
from ._workers import WorkerError, worker_index

__all__ = ("Loop", "new_event_loop", "run", "EventLoopPolicy", "install", "Handle", "TimerHandle", "WorkerError",
           "worker_index")

"""Thin kopf handlers: watch events in, cache updates and work-queue keys out.

Two passes per event, by design. kopf runs every `@kopf.index` handler of every resource kind
before any other handler, and holds the others until the initial listing of all kinds is in;
so the cache is fed from index handlers and the work queue from event handlers. That makes a
restart safe: a rental is never reconciled before its pod has been listed, which would look like
a pod lost behind the operator's back.

Every handler is `async def` although none awaits: kopf runs a plain `def` handler in its
thread pool, which would mutate the cache and the work queue (heap and asyncio.Event, neither
thread-safe) from another thread, and cost a thread hop per watch event. They only touch memory,
so running them on the event loop is both correct and cheap.
"""

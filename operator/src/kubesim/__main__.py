"""`python -m kubesim serve ...` (the API emulator) and `python -m kubesim node ...`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import signal
import sys
from pathlib import Path

from . import tls
from .kubeconfig import write_kubeconfig
from .server import Server, serve


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubesim serve", description="Run the API emulator.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--history-size", type=int, default=20_000,
                   help="events kept per resource for watch resumption (older: 410 Gone)")
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    p.add_argument("--gc-delay", type=float, default=0.0,
                   help="seconds before the garbage collector acts on a deleted owner")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with a fresh self-signed certificate (kubectl then sends "
                        "its bearer token, so request hooks see the identity)")
    p.add_argument("--record-requests", action="store_true")
    p.add_argument("--fault", action="append", default=[], metavar="JSON",
                   help='a fault rule, e.g. {"verb":"patch","code":500,"rate":0.1}')
    return p


async def _run(args: argparse.Namespace) -> None:
    server = Server(history_size=args.history_size, bookmark_interval=args.bookmark_interval,
                    gc_delay=args.gc_delay)
    server.record.enabled = args.record_requests
    for spec in args.fault:
        server.faults.add(json.loads(spec))
    context, ca = None, None
    if args.tls:
        cert, key = tls.make_certificate(args.kubeconfig.parent / "kubesim-tls", args.host)
        context, ca = tls.server_context(cert, key), tls.ca_data(cert)
        server.controllers.root_ca = Path(cert).read_text()
    runner, port = await serve(server, args.host, args.port, context)
    freezer = asyncio.create_task(_keep_heap_frozen())
    url = f"{'https' if args.tls else 'http'}://{args.host}:{port}"
    write_kubeconfig(args.kubeconfig, url, ca_data=ca)
    print(json.dumps({"url": url, "kubeconfig": str(args.kubeconfig)}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    freezer.cancel()
    await server.controllers.stop()
    await runner.cleanup()


async def _keep_heap_frozen(every: float = 1.0) -> None:
    """Move the store's long-lived objects out of the collector's reach every second.

    A real kube-apiserver's garbage collector runs concurrently with its requests; CPython's
    stops the event loop to walk every tracked object, and at ten thousand rentals the store
    is millions of them: a full collection stalled every request for hundreds of
    milliseconds, which the operator's latency figures then counted as the operator's. The
    store's objects are acyclic dicts and lists (JSON), freed by reference counting when
    replaced; `gc.freeze()` (no collection, nearly free) keeps the collector to what arrived
    in the last second.
    """
    while True:
        await asyncio.sleep(every)
        gc.freeze()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "node"):
        print("usage: python -m kubesim {serve,node} ...", file=sys.stderr)
        return 2
    if argv[0] == "node":
        node = importlib.import_module("kubesim.node")  # written separately; imported lazily
        return int(node.main(argv[1:]) or 0)
    args = _serve_parser().parse_args(argv[1:])
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

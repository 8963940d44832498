"""The operator process: kopf settings, the watches, the leader election, the controller's
lifetime. kopf runs the process (startup, cleanup, signals) and the optional admission
webhook; the watches are the operator's own (`watches`).

Run it as `gpurental-operator` (or `kopf run -m gpurental.main`), never `kopf run main.py`: that
puts this folder first on sys.path, where sibling modules could shadow the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import kopf

from gpurental import gc_tuning, health, loop_lag, metrics
from gpurental.clock import clock_from_env
from gpurental.controller import Controller
from gpurental.idle_watch import IdleWatch
from gpurental.k8s import Kube, load_config
from gpurental.leader import LeaderElection, LostLeadership
from gpurental.options import DEFAULTS, Options
from gpurental.watches import Watches

log = logging.getLogger(__name__)


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings, each chosen on purpose. kopf handles no watch events here (the
    operator's own informers do: `watches`), so none of its persistence is used."""
    # The operator posts its own Events (gpurental.events); kopf's poster would turn log
    # lines into Events, which at ten thousand rentals would flood the API.
    settings.posting.enabled = False
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10


def configure_webhook(settings: kopf.OperatorSettings, options: Options) -> None:
    """Serve the validating webhook with the mounted certificate, if asked to."""
    if options.webhook_port is None or options.webhook_cert_dir is None:
        return
    cert_dir = Path(options.webhook_cert_dir)
    # kopf re-reads the files when they change, so cert-manager's renewals need no restart.
    settings.admission.server = kopf.WebhookServer(
        addr=options.webhook_address or None, port=options.webhook_port,
        certfile=cert_dir / "tls.crt", pkeyfile=cert_dir / "tls.key")
    # The chart owns the ValidatingWebhookConfiguration (cert-manager injects its caBundle);
    # kopf managing one too would need cluster-wide write access to webhook configurations.
    settings.admission.managed = None


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    gc_tuning.install()
    # `kopf run -m gpurental.main` (no console script) runs with the defaults.
    options: Options = memo.get("options") or DEFAULTS
    configure_webhook(settings, options)
    identity = f"{os.environ.get('POD_ID') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    kube = Kube(load_config(), connections=options.api_connections)
    controller = Controller(kube, clock_from_env(), options, identity=identity)
    memo.controller = controller
    memo.watches = Watches(kube, controller, options.namespaces)
    memo.leader = None
    if options.leader_election:
        # The Lease lives beside the operator's pod unless told otherwise.
        namespace = (options.leader_election_namespace or os.environ.get("POD_NAMESPACE")
                     or "default")
        memo.leader = LeaderElection(kube, controller.clock, namespace,
                                     options.leader_election, identity)
    memo.tasks = [asyncio.create_task(serve(controller, memo.watches, memo.leader),
                                      name="controller"),
                  asyncio.create_task(gc_tuning.keep_tuned(), name="gc-tuning"),
                  asyncio.create_task(loop_lag.measure(), name="loop-lag")]
    if options.prometheus_url:
        watch = IdleWatch(controller.world, controller.clock, controller.idle_findings,
                          controller.queue.add, options.prometheus_url,
                          options.idle_check_interval)
        memo.tasks.append(asyncio.create_task(watch.run(), name="idle-watch"))
    if options.metrics_port is not None:
        task = memo.tasks[0]
        memo.health = await health.serve(options.metrics_port, lambda: not task.done())


async def serve(controller: Controller, watches: Watches,
                leader: LeaderElection | None) -> None:
    """List and watch; once the cache is synced and this replica leads, run the passes."""
    await watches.run()
    if leader is not None:
        await leader.acquire()
    # Only the acting replica exports the cache's gauges: a standby's would count every
    # rental twice on the dashboards.
    metrics.register_world(lambda: controller.world)
    if leader is None:
        await controller.run()
        return
    work = asyncio.ensure_future(controller.run())
    holding = asyncio.ensure_future(leader.hold())
    try:
        done, _ = await asyncio.wait({work, holding}, return_when=asyncio.FIRST_COMPLETED)
        if holding in done and isinstance(holding.exception(), LostLeadership):
            # A pass in flight cannot be recalled: stop acting now, come back as a standby.
            log.critical("lost the leadership (%s); exiting", holding.exception())
            logging.shutdown()
            os._exit(1)
        for task in done:
            task.result()  # the work loops ended: let /healthz say so
    finally:
        work.cancel()
        holding.cancel()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.get("tasks") or ():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if memo.get("leader") is not None:
        await memo.leader.release()
    if memo.get("watches") is not None:
        await memo.watches.close()
    if memo.get("health") is not None:
        await memo.health.cleanup()
    if memo.get("controller") is not None:
        await memo.controller.kube.close()

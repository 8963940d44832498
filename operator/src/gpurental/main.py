"""The operator process: kopf settings, handler registration, the controller's lifetime.

Run it as `gpurental-operator` (or `kopf run -m gpurental.main`), never `kopf run main.py`: that
puts this folder first on sys.path, where sibling modules could shadow the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import kopf

from gpurental import gc_tuning, health, metrics
from gpurental.clock import clock_from_env
from gpurental.constants import GROUP, KOPF_FINALIZER, LABEL_MANAGED_BY, MANAGED_BY
from gpurental.controller import Controller
from gpurental.handlers import catalog, children, nodes, rentals  # noqa: F401  (registers handlers)
from gpurental.idle_watch import IdleWatch
from gpurental.k8s import Kube, load_config
from gpurental.options import DEFAULTS, Options

log = logging.getLogger(__name__)


class LevelBasedDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff-base, minus the essence it builds for every watch event.

    kopf deep-copies each object it receives to diff it against the last handled state, even
    when no handler consumes the diff. This operator has no change-detecting handlers
    (on.create/update/resume/delete/field; a unit test keeps it so), so the essence is never
    compared: skipping the copy saves a few percent of CPU at ten thousand rentals, where
    every heartbeat comes back as a watch event. Should such a handler ever be added, use
    kopf.AnnotationsDiffBaseStorage again."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings, each chosen on purpose."""
    # kopf's finalizer is not the reconciler's settlement finalizer (constants.KOPF_FINALIZER
    # says why), and lives under our prefix so anything kopf adds is recognisably ours.
    settings.persistence.finalizer = KOPF_FINALIZER
    # kopf keeps handler progress and a diff-base in annotations only for change-detecting
    # handlers, which this operator does not use (it is level-based over on.event), so the
    # diff-base builds nothing (LevelBasedDiffBase). Should one be added, both write under our
    # own prefix and ignore the annotations GitOps tools keep, so Argo CD's or kubectl's
    # bookkeeping never looks like a spec change.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = LevelBasedDiffBase(
        prefix=GROUP,
        key="last-handled-configuration",
        ignored_fields=[
            "metadata.annotations",
            "metadata.labels",
            "status",
        ],
    )
    # Events are the user's timeline in `kubectl describe`: post the operator's explicit
    # transition events (INFO and up), never its log lines (kopf >=1.44 default, kept on
    # purpose: log-derived events would flood the API at ten thousand rentals).
    settings.posting.enabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "gpu-rental-operator"
    settings.posting.event_name_prefix = "gpurental-"
    # Watch only the children this operator labels, server-side: other pods cost nothing.
    managed = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
    for plural in ("pods", "persistentvolumeclaims", "secrets", "services"):
        settings.watching.label_selectors["v1", plural] = managed
    settings.watching.label_selectors["networking.k8s.io", "ingresses"] = managed
    # Reconnect watch streams every few minutes: a silently dead TCP connection must not
    # leave the operator blind for long; the server then replays from the last version.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
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
    controller = Controller(Kube(load_config(), threads=options.api_threads), clock_from_env(),
                            options)
    memo.controller = controller
    metrics.register_world(lambda: controller.world)
    memo.tasks = [asyncio.create_task(controller.run(), name="controller"),
                  asyncio.create_task(gc_tuning.keep_tuned(), name="gc-tuning")]
    if options.prometheus_url:
        watch = IdleWatch(controller.world, controller.clock, controller.idle_findings,
                          controller.queue.add, options.prometheus_url,
                          options.idle_check_interval)
        memo.tasks.append(asyncio.create_task(watch.run(), name="idle-watch"))
    if options.metrics_port is not None:
        task = memo.tasks[0]
        memo.health = await health.serve(options.metrics_port, lambda: not task.done())


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.get("tasks") or ():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if memo.get("health") is not None:
        await memo.health.cleanup()
    if memo.get("controller") is not None:
        memo.controller.kube.close()

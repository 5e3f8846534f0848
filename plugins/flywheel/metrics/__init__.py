"""Prometheus publishing shared by the stages: each stage fills a ``CollectorRegistry`` of its own and
:func:`publish` writes it as a node-exporter textfile under ``<FLYWHEEL_HOME>/metrics/`` (always) and
pushes it to the Pushgateway when ``FLYWHEEL_PUSHGATEWAY_URL`` is set. Owned by no stage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from flywheel.config import Settings, get_settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

PUSHGATEWAY_ENV = "FLYWHEEL_PUSHGATEWAY_URL"


def publish(
    registry: CollectorRegistry,
    *,
    textfile: str,
    job: str,
    settings: Settings | None = None,
    pushgateway_url: str | None = None,
) -> Path:
    """Write ``registry`` to ``<FLYWHEEL_HOME>/metrics/<textfile>`` and, with a Pushgateway configured
    (``FLYWHEEL_PUSHGATEWAY_URL``, or ``pushgateway_url``), replace the group of ``job`` there with it.

    Returns the textfile's path. A push that fails raises ``RuntimeError`` naming the gateway and the fix;
    the textfile is written first, so nothing is lost.
    """
    from prometheus_client import push_to_gateway, write_to_textfile

    settings = settings or get_settings()
    path = settings.home / "metrics" / textfile
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)  # written beside and renamed: a scraper never reads half a file
    url = pushgateway_url or settings.metrics.pushgateway_url
    if url:
        try:
            push_to_gateway(url, job=job, registry=registry, timeout=10)
        except OSError as exc:
            raise RuntimeError(
                f"could not push metrics to the Pushgateway at {url} ({PUSHGATEWAY_ENV}): {exc}. "
                f"The textfile {path} was written; start the Pushgateway or unset {PUSHGATEWAY_ENV}"
            ) from exc
        log.info("pushed metrics to %s (job %s)", url, job)
    log.info("wrote metrics to %s", path)
    return path

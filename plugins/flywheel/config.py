"""Typed settings read from ``FLYWHEEL_*`` environment variables, with defaults that run on one machine.

The only module that reads the environment: each variable is registered in :data:`VARIABLES` (another tool's
in :data:`TOOL_VARIABLES`) and parsed into a typed section of :class:`Settings`; a bad value raises
:class:`SettingsError`. Sections: ``drift`` (:class:`DriftRule`), ``training`` (:class:`TrainingDefaults`),
``trainer`` (:class:`TrainerPod`), ``feature_store`` (:class:`FeatureStoreBackend`), ``metrics``
(:class:`MetricsSettings`), ``evaluation`` (:class:`EvaluationSettings`).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

#: The checkout holding ``dags/``, ``plugins/``, ``sql/`` and ``dbt/``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Every environment variable flywheel reads; docs/configuration.md documents exactly these (a test checks).
VARIABLES: tuple[str, ...] = (
    "FLYWHEEL_HOME",
    "FLYWHEEL_WAREHOUSE_URL",
    "FLYWHEEL_LANDING_DIR",
    "FLYWHEEL_QUARANTINE_DIR",
    "FLYWHEEL_ARTIFACTS_DIR",
    "FLYWHEEL_AIRFLOW_HOME",
    "FLYWHEEL_AIRFLOW_DB_URL",
    "FLYWHEEL_ONLINE_STORE",
    "FLYWHEEL_REDIS_URL",
    "FLYWHEEL_FEAST_PROJECT",
    "FLYWHEEL_TRAIN_CRON",
    "FLYWHEEL_TRAIN_BUDGET",
    "FLYWHEEL_TRAIN_MAX_EPOCHS",
    "FLYWHEEL_TRAIN_WORKDIR",
    "FLYWHEEL_TRAIN_WARM_START",
    "FLYWHEEL_TRAINER_IMAGE",
    "FLYWHEEL_TRAINER_NAMESPACE",
    "FLYWHEEL_TRAINER_SECRET",
    "FLYWHEEL_TRAINER_PVC",
    "FLYWHEEL_TRAINER_MOUNT",
    "FLYWHEEL_TRAINER_SERVICE_ACCOUNT",
    "FLYWHEEL_KUBERNETES_CONN_ID",
    "FLYWHEEL_DRIFT_PSI",
    "FLYWHEEL_DRIFT_SUSTAINED_PSI",
    "FLYWHEEL_DRIFT_SUSTAINED_WINDOWS",
    "FLYWHEEL_DRIFT_COOLDOWN_HOURS",
    "FLYWHEEL_PUSHGATEWAY_URL",
    "FLYWHEEL_EVAL_HELD_OUT_HOURS",
    "FLYWHEEL_EVAL_RESAMPLES",
    "FLYWHEEL_EVAL_SEED",
    "FLYWHEEL_EVAL_AUC_MARGIN",
    "FLYWHEEL_EVAL_LOG_LOSS_MARGIN",
    "FLYWHEEL_EVAL_ECE_MARGIN",
    "FLYWHEEL_EVAL_CTR_MARGIN",
    "FLYWHEEL_EVAL_MIN_SLICE_ROWS",
    "FLYWHEEL_EVAL_MIN_AUC",
    "FLYWHEEL_EVAL_MAX_ECE",
    "FLYWHEEL_EVAL_ATTRIBUTION_ROWS",
    "FLYWHEEL_EVAL_ATTRIBUTION_SHIFT",
    "FLYWHEEL_SERVING_VENV",
    "FLYWHEEL_MODEL_REPOSITORY",
    "FLYWHEEL_TRITON_URL",
    "FLYWHEEL_GATEWAY_URL",
    "FLYWHEEL_SERVE_MAX_ITEMS",
    "FLYWHEEL_CANARY_STATE",
    "FLYWHEEL_PREDICTION_FLUSH_SECONDS",
    "FLYWHEEL_CANARY_STEPS",
    "FLYWHEEL_CANARY_MIN_REQUESTS",
    "FLYWHEEL_CANARY_MIN_SECONDS",
    "FLYWHEEL_CANARY_MAX_SECONDS",
    "FLYWHEEL_CANARY_CTR_MARGIN",
    "FLYWHEEL_CANARY_MAX_ERROR_RATE",
    "FLYWHEEL_CANARY_P99_MS",
)
#: Other tools' variables that flywheel consults too (docs/configuration.md lists them apart).
TOOL_VARIABLES: tuple[str, ...] = ("RAY_TMPDIR",)

#: Online stores flywheel supports: the embedded default and the production backend.
ONLINE_STORES = ("sqlite", "redis")
# Feast's rule for project names; hyphens are left out because Redis key patterns match on the name.
_FEAST_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label: namespaces
_CRON_ALIASES = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
#: URL schemes flywheel.warehouse.open_warehouse opens (``postgresql+psycopg2`` counts as postgresql).
WAREHOUSE_SCHEMES = ("duckdb", "postgresql", "postgres")


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class SettingsError(ValueError):
    """A ``FLYWHEEL_*`` variable holds a value flywheel cannot use; says which, what, and a good value."""

    def __init__(self, name: str, value: str, problem: str, example: str) -> None:
        self.name, self.value, self.example = name, value, example
        fix = f"set e.g. {name}={example}, or unset it for the default"
        super().__init__(f"{name}={redacted(value)!r} {problem}; {fix}")


def _raw(name: str) -> str | None:
    # A name in neither registry is a programming error: register (and document) the variable first.
    if name not in VARIABLES and name not in TOOL_VARIABLES:
        raise KeyError(f"{name} is not in flywheel.config.VARIABLES (nor TOOL_VARIABLES)")
    return os.environ.get(name)


def unset_variables(names: Iterable[str]) -> list[str]:
    """Those of ``names`` (registered variables) the environment does not set: for a caller that sets
    defaults for a while and removes them afterwards (``flywheel demo``)."""
    return [name for name in names if _raw(name) is None]


def _text(name: str, default: str) -> str:
    value = (_raw(name) or "").strip()
    return value or default


def _optional(name: str) -> str | None:
    return (_raw(name) or "").strip() or None


def _path(name: str, default: Path) -> Path:
    value = _optional(name)
    return Path(value).expanduser().resolve() if value else default


def _location(name: str, default: Path) -> Path | str:
    """A folder that may live in an object store: ``s3://...`` stays a URI string, a path is resolved."""
    value = _optional(name)
    if value and "://" in value and not value.startswith("file://"):
        return value.rstrip("/")
    return Path(value.removeprefix("file://")).expanduser().resolve() if value else default


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _bool(name: str, default: bool) -> bool:
    text = _optional(name)
    if text is None:
        return default
    if text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    raise SettingsError(
        name, text, f"is not a boolean ({' / '.join(_TRUE)}, or {' / '.join(_FALSE)})", "true"
    )


def _int(name: str, default: int, low: int, high: int | None = None, example: int | None = None) -> int:
    text = _optional(name)
    if text is None:
        return default
    bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise SettingsError(name, text, f"is not a whole number {bounds}", str(example or default))
    return value


def _float(name: str, default: float, low: float, *, above: bool = False, high: float | None = None) -> float:
    text = _optional(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if (
        not math.isfinite(value)
        or value < low
        or (above and value == low)
        or (high is not None and value > high)
    ):
        bounds = f"{'above' if above else 'of at least'} {low:g}"
        bounds += f" and at most {high:g}" if high is not None else ""
        raise SettingsError(name, text, f"is not a number {bounds}", f"{default:g}")
    return value


def _url(name: str, default: str | None, schemes: tuple[str, ...] | None, example: str) -> str | None:
    """A ``scheme://...`` URL (or None when unset and no default); ``schemes`` limits the scheme."""
    text = _optional(name)
    if text is None:
        return default
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    if not scheme or (schemes is not None and scheme not in schemes):
        if schemes:
            article = "an" if schemes[0][0] in "aeiouh" else "a"
            names = f"{', '.join(schemes[:-1])} or {schemes[-1]}" if len(schemes) > 1 else schemes[0]
            wanted = f"{article} {names} URL"
        else:
            wanted = "a URL (scheme://...)"
        raise SettingsError(name, text, f"is not {wanted}", example)
    return text


@dataclass(frozen=True)
class DriftRule:
    """When ``detect_drift`` requests retraining, from ``FLYWHEEL_DRIFT_*`` (docs/monitoring.md).

    The defaults below are the one place the rule's numbers are written: flywheel.monitoring.decision and
    ``flywheel psi`` take them from here, the detect_drift DAG renders them into its doc, and
    tests/unit/test_thresholds.py holds monitoring/prometheus/rules.yml (which cannot import them) to them.
    """

    #: PSI that requests retraining on its own, in the latest window (the industry's "significant shift").
    psi_threshold: float = 0.2
    #: PSI that requests retraining when it holds for ``sustained_windows`` consecutive hourly windows.
    sustained_threshold: float = 0.1
    sustained_windows: int = 2
    #: No new request within this many hours after the last one.
    cooldown_hours: float = 6.0


@dataclass(frozen=True)
class TrainingDefaults:
    """``train_model``'s schedule and the form defaults its scheduled runs use (docs/training.md)."""

    cron: str = "0 3 * * 1"  # empty: drift (the asset) is the only trigger
    budget: int = 8
    max_epochs: int = 8
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    #: Ray's temp folder for a search (``RAY_TMPDIR``, kept afterwards); None: one per run, removed after.
    ray_tmpdir: Path | None = None
    #: Fine-tune the model in service (when its feature spec fits) instead of a cold search: the form's
    #: default, so what drift-triggered runs do. On: in benchmarks/warm_start.py warm beat cold on both
    #: post-drift AUC and wall time (docs/training.md has the figures).
    warm_start: bool = True


@dataclass(frozen=True)
class TrainerPod:
    """Where and as whom the Kubernetes trainer pod runs (``FLYWHEEL_TRAINER_*``)."""

    image: str = "flywheel-trainer:latest"
    namespace: str = "flywheel"
    kubernetes_conn_id: str = "kubernetes_default"
    secret_name: str | None = None
    pvc_claim_name: str | None = None
    mount_path: str = "/flywheel"
    service_account_name: str | None = None


@dataclass(frozen=True)
class FeatureStoreBackend:
    """Feast's project and online store (docs/feature-store.md)."""

    online_store: str = "sqlite"
    project: str = "flywheel"
    redis_url: str = "127.0.0.1:6379"


@dataclass(frozen=True)
class MetricsSettings:
    """Where the drift check's metrics go besides the textfile."""

    pushgateway_url: str | None = None


@dataclass(frozen=True)
class EvaluationSettings:
    """How ``evaluate_model`` judges a candidate (``FLYWHEEL_EVAL_*``, docs/configuration.md).

    Margins are non-inferiority margins in the metric's own units: a check passes when the paired 95%
    interval of (candidate - champion) rules out a loss larger than the margin.
    """

    #: The newest published hours held out for evaluation; the candidate's training window excludes them.
    held_out_hours: int = 6
    #: Bootstrap resamples: 1,000 puts the 2.5% percentile on 25 draws, stable to about 0.1 standard error.
    resamples: int = 1000
    seed: int = 0
    #: At 100k impressions and a 5% click rate the paired AUC difference of two similar models has a 95%
    #: half-width near 0.005, so a 0.005 margin would reject an equally good candidate about half the time.
    auc_margin: float = 0.01
    #: Lower is better. About 5% of the log loss of a 5% click rate (0.20): a visible loss of fit.
    log_loss_margin: float = 0.01
    #: Lower is better. One point of calibration error: a predicted 5% that is really 6% in some bin.
    ece_margin: float = 0.01
    #: Half a point of CTR@k, a tenth of a typical 5% click rate: smaller losses are within replay noise.
    ctr_margin: float = 0.005
    #: A slice with fewer impressions has a few dozen clicks: its interval is wider than any margin, so it
    #: is reported, not gated (gating it would reject every candidate on noise).
    min_slice_rows: int = 1000
    #: The first model ever (no champion): its AUC interval's lower bound must reach this (0.5 is chance).
    min_auc: float = 0.6
    #: ... and the upper bound of its calibration error must stay within this.
    max_ece: float = 0.05
    #: Held-out rows whose Shapley values are computed for each model (0: no attribution). With 2,000
    #: rows the profile of one model on two samples of a window differs by a total variation distance of
    #: about 0.01, at about 3 s per model on two idle cores (docs/evaluation.md, "Attribution").
    attribution_rows: int = 2000
    #: The total variation distance between the two models' normalised importance profiles from which the
    #: shift is reported (never gated): nearly a third of the importance moved between features, e.g. one
    #: falling from 40% to 10% of it. In benchmarks/evaluation.py sampling noise is about 0.01 and a
    #: candidate trained on twice the champion's rows moved 0.19: 0.3 flags more than an ordinary retrain.
    attribution_shift: float = 0.3


@dataclass(frozen=True)
class ServingSettings:
    """Triton, the gateway and the canary (``FLYWHEEL_SERVING_*``, ``FLYWHEEL_CANARY_*``, docs/serving.md).

    Paths left None here default under ``FLYWHEEL_HOME`` (see :func:`get_settings`).
    """

    #: The serving venv holding ``nvidia-pytriton`` (tritonserver and its python backend) and torch.
    venv: Path = field(default_factory=lambda: PROJECT_ROOT / ".serving-venv")
    #: Triton's model repository: one model per registry version (docs/serving.md, "Layout").
    model_repository: Path | None = None
    #: Triton's HTTP endpoint (host:port). ``flywheel triton start`` binds its port; gRPC and metrics
    #: listen on the two ports after it, as Triton's own defaults (8000, 8001, 8002) do.
    triton_url: str = "127.0.0.1:8000"
    #: Where the gateway answers (``flywheel serve`` binds it; the DAG and ``flywheel traffic`` call it).
    gateway_url: str = "http://127.0.0.1:8100"
    #: The most candidates one ranking request may carry.
    max_items: int = 1000
    #: The shared canary state: a file replaced atomically (a path), or a ``redis://`` URL.
    canary_state: str | None = None
    #: How often the gateway closes a prediction log file in the landing zone (a file at most this old).
    flush_seconds: float = 5.0
    #: Canary traffic shares in percent, in order; the last must be 100.
    canary_steps: tuple[int, ...] = (5, 10, 25, 50, 100)
    #: A step is judged only after this many canary requests and this many seconds ...
    canary_min_requests: int = 200
    canary_min_seconds: float = 30.0
    #: ... and rolls back when it cannot show non-inferiority within this many seconds.
    canary_max_seconds: float = 300.0
    #: Non-inferiority margin on the canary's CTR effect (clicks per shown item), by DID.
    canary_ctr_margin: float = 0.02
    #: Guards, checked every few seconds during a step: a breach rolls back at once.
    canary_max_error_rate: float = 0.01
    canary_p99_ms: float = 100.0


@dataclass(frozen=True)
class Settings:
    """Where flywheel keeps its state and how each stage is tuned; read from the environment.

    ``home`` holds the warehouse file, artifacts, the landing zone and Airflow's home, so a test or a
    parallel run that sets ``FLYWHEEL_HOME`` gets a world of its own. Stages get a section each: ``drift``,
    ``training``, ``trainer``, ``feature_store``, ``metrics``, ``evaluation``. Serving adds its own the same
    way when it has a setting to read: a frozen dataclass with typed defaults, a ``_<section>()`` reader
    below, a field here, and their variables in :data:`VARIABLES` and docs/configuration.md.
    """

    home: Path
    warehouse_url: str
    landing_dir: Path
    quarantine_dir: Path
    artifacts_dir: Path | str  # a local folder, or an object store URI string (s3://bucket/prefix)
    airflow_home: Path
    project_root: Path = field(default=PROJECT_ROOT)
    airflow_db_url: str | None = None
    drift: DriftRule = field(default_factory=DriftRule)
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    trainer: TrainerPod = field(default_factory=TrainerPod)
    feature_store: FeatureStoreBackend = field(default_factory=FeatureStoreBackend)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)

    @property
    def dags_folder(self) -> Path:
        return self.project_root / "dags"

    @property
    def plugins_folder(self) -> Path:
        return self.project_root / "plugins"

    def ensure_dirs(self) -> None:
        """Create the folders this home needs; safe to call any number of times."""
        for path in (self.home, self.landing_dir, self.quarantine_dir, self.artifacts_dir, self.airflow_home):
            if isinstance(path, Path):  # an object store has no folders to create
                path.mkdir(parents=True, exist_ok=True)


def _drift_rule() -> DriftRule:
    d = DriftRule
    return DriftRule(
        psi_threshold=_float("FLYWHEEL_DRIFT_PSI", d.psi_threshold, 0.0, above=True),
        sustained_threshold=_float("FLYWHEEL_DRIFT_SUSTAINED_PSI", d.sustained_threshold, 0.0, above=True),
        sustained_windows=_int("FLYWHEEL_DRIFT_SUSTAINED_WINDOWS", d.sustained_windows, 1),
        cooldown_hours=_float("FLYWHEEL_DRIFT_COOLDOWN_HOURS", d.cooldown_hours, 0.0),
    )


def _training_defaults() -> TrainingDefaults:
    cron = _raw("FLYWHEEL_TRAIN_CRON")
    cron = TrainingDefaults.cron if cron is None else " ".join(cron.split())
    if cron and cron not in _CRON_ALIASES and len(cron.split()) != 5:
        raise SettingsError(
            "FLYWHEEL_TRAIN_CRON", cron, "is not a cron expression of five fields", '"0 3 * * 1"'
        )
    workdir = _optional("FLYWHEEL_TRAIN_WORKDIR")
    ray_tmpdir = _optional("RAY_TMPDIR")
    # Bounds are those of train_model's form (its Params): a default outside them fails every run.
    return TrainingDefaults(
        cron=cron,
        budget=_int("FLYWHEEL_TRAIN_BUDGET", TrainingDefaults.budget, 1, 200),
        max_epochs=_int("FLYWHEEL_TRAIN_MAX_EPOCHS", TrainingDefaults.max_epochs, 1, 100),
        **({"workdir": Path(workdir).expanduser()} if workdir else {}),
        ray_tmpdir=Path(ray_tmpdir).expanduser() if ray_tmpdir else None,
        warm_start=_bool("FLYWHEEL_TRAIN_WARM_START", TrainingDefaults.warm_start),
    )


def _trainer_pod() -> TrainerPod:
    t = TrainerPod
    namespace = _text("FLYWHEEL_TRAINER_NAMESPACE", t.namespace)
    if len(namespace) > 63 or not _K8S_NAME.match(namespace):
        raise SettingsError(
            "FLYWHEEL_TRAINER_NAMESPACE", namespace, "is not a Kubernetes namespace name", "flywheel"
        )
    mount_path = _text("FLYWHEEL_TRAINER_MOUNT", t.mount_path)
    if not mount_path.startswith("/"):
        raise SettingsError("FLYWHEEL_TRAINER_MOUNT", mount_path, "is not an absolute path", t.mount_path)
    return TrainerPod(
        image=_text("FLYWHEEL_TRAINER_IMAGE", t.image),
        namespace=namespace,
        kubernetes_conn_id=_text("FLYWHEEL_KUBERNETES_CONN_ID", t.kubernetes_conn_id),
        secret_name=_optional("FLYWHEEL_TRAINER_SECRET"),
        pvc_claim_name=_optional("FLYWHEEL_TRAINER_PVC"),
        mount_path=mount_path,
        service_account_name=_optional("FLYWHEEL_TRAINER_SERVICE_ACCOUNT"),
    )


def _feature_store_backend() -> FeatureStoreBackend:
    f = FeatureStoreBackend
    online_store = _text("FLYWHEEL_ONLINE_STORE", f.online_store).lower()
    if online_store not in ONLINE_STORES:
        raise SettingsError(
            "FLYWHEEL_ONLINE_STORE", online_store, f"is not one of {', '.join(ONLINE_STORES)}", "redis"
        )
    project = _text("FLYWHEEL_FEAST_PROJECT", f.project)
    if not _FEAST_PROJECT.match(project):
        raise SettingsError(
            "FLYWHEEL_FEAST_PROJECT",
            project,
            "is not a Feast project name (letters, digits, underscores; starting with a letter or digit)",
            f.project,
        )
    redis_url = _text("FLYWHEEL_REDIS_URL", f.redis_url)
    if "://" in redis_url:
        _url("FLYWHEEL_REDIS_URL", None, ("redis", "rediss"), "redis://cache:6379/0")
        if not urlsplit(redis_url).hostname:
            raise SettingsError("FLYWHEEL_REDIS_URL", redis_url, "names no host", "redis://cache:6379/0")
    return FeatureStoreBackend(online_store=online_store, project=project, redis_url=redis_url)


def _metrics() -> MetricsSettings:
    url = _optional("FLYWHEEL_PUSHGATEWAY_URL")
    if url and "://" in url:  # host:port alone is fine too: prometheus_client assumes http
        _url("FLYWHEEL_PUSHGATEWAY_URL", None, ("http", "https"), "http://127.0.0.1:9091")
    return MetricsSettings(pushgateway_url=url)


def _evaluation() -> EvaluationSettings:
    e = EvaluationSettings
    # Margins are in the metrics' own units, all of which range over [0, 1] (CTR@k included).
    return EvaluationSettings(
        held_out_hours=_int("FLYWHEEL_EVAL_HELD_OUT_HOURS", e.held_out_hours, 1, 24 * 28),
        # Below 100 resamples the 2.5% percentile rests on two or three draws.
        resamples=_int("FLYWHEEL_EVAL_RESAMPLES", e.resamples, 100, 100_000),
        seed=_int("FLYWHEEL_EVAL_SEED", e.seed, 0, 2**63 - 1),
        auc_margin=_float("FLYWHEEL_EVAL_AUC_MARGIN", e.auc_margin, 0.0, high=1.0),
        log_loss_margin=_float("FLYWHEEL_EVAL_LOG_LOSS_MARGIN", e.log_loss_margin, 0.0, high=1.0),
        ece_margin=_float("FLYWHEEL_EVAL_ECE_MARGIN", e.ece_margin, 0.0, high=1.0),
        ctr_margin=_float("FLYWHEEL_EVAL_CTR_MARGIN", e.ctr_margin, 0.0, high=1.0),
        min_slice_rows=_int("FLYWHEEL_EVAL_MIN_SLICE_ROWS", e.min_slice_rows, 1),
        min_auc=_float("FLYWHEEL_EVAL_MIN_AUC", e.min_auc, 0.0, high=1.0),
        max_ece=_float("FLYWHEEL_EVAL_MAX_ECE", e.max_ece, 0.0, above=True, high=1.0),
        # 100k rows already take minutes per model; a total variation distance lies in (0, 1].
        attribution_rows=_int("FLYWHEEL_EVAL_ATTRIBUTION_ROWS", e.attribution_rows, 0, 100_000),
        attribution_shift=_float(
            "FLYWHEEL_EVAL_ATTRIBUTION_SHIFT", e.attribution_shift, 0.0, above=True, high=1.0
        ),
    )


def _host_port(name: str, default: str) -> str:
    text = _text(name, default)
    host, _, port = text.removeprefix("http://").rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(name, text, "is not host:port", default)
    return f"{host}:{port}"


def _canary_steps() -> tuple[int, ...]:
    text = _optional("FLYWHEEL_CANARY_STEPS")
    if text is None:
        return ServingSettings.canary_steps
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        steps = ()
    if (
        not steps
        or steps[-1] != 100
        or any(not 0 < s <= 100 for s in steps)
        or list(steps) != sorted(set(steps))
    ):
        raise SettingsError(
            "FLYWHEEL_CANARY_STEPS", text, "is not increasing percentages ending at 100", "5,10,25,50,100"
        )
    return steps


def _serving(home: Path) -> ServingSettings:
    s = ServingSettings
    state = _optional("FLYWHEEL_CANARY_STATE")
    if state and "://" in state:
        _url("FLYWHEEL_CANARY_STATE", None, ("redis", "rediss"), "redis://127.0.0.1:6379/0")
    elif state:
        state = str(Path(state).expanduser().resolve())
    gateway = _url("FLYWHEEL_GATEWAY_URL", s.gateway_url, ("http", "https"), s.gateway_url) or s.gateway_url
    return ServingSettings(
        venv=_path("FLYWHEEL_SERVING_VENV", s().venv),
        model_repository=_path("FLYWHEEL_MODEL_REPOSITORY", home / "triton" / "models"),
        triton_url=_host_port("FLYWHEEL_TRITON_URL", s.triton_url),
        gateway_url=gateway.rstrip("/"),
        max_items=_int("FLYWHEEL_SERVE_MAX_ITEMS", s.max_items, 1, 100_000),
        canary_state=state or str(home / "serving" / "canary.json"),
        flush_seconds=_float(
            "FLYWHEEL_PREDICTION_FLUSH_SECONDS", s.flush_seconds, 0.0, above=True, high=3600
        ),
        canary_steps=_canary_steps(),
        canary_min_requests=_int("FLYWHEEL_CANARY_MIN_REQUESTS", s.canary_min_requests, 1),
        canary_min_seconds=_float("FLYWHEEL_CANARY_MIN_SECONDS", s.canary_min_seconds, 0.0),
        canary_max_seconds=_float("FLYWHEEL_CANARY_MAX_SECONDS", s.canary_max_seconds, 1.0),
        canary_ctr_margin=_float("FLYWHEEL_CANARY_CTR_MARGIN", s.canary_ctr_margin, 0.0, high=1.0),
        canary_max_error_rate=_float(
            "FLYWHEEL_CANARY_MAX_ERROR_RATE", s.canary_max_error_rate, 0.0, high=1.0
        ),
        canary_p99_ms=_float("FLYWHEEL_CANARY_P99_MS", s.canary_p99_ms, 0.0, above=True),
    )


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests and CLI flags change it).

    Raises :class:`SettingsError` for the first malformed variable, whichever section it belongs to.
    """
    home = _path("FLYWHEEL_HOME", PROJECT_ROOT / ".flywheel")
    warehouse_url = _url(
        "FLYWHEEL_WAREHOUSE_URL",
        f"duckdb:///{home / 'warehouse.duckdb'}",
        WAREHOUSE_SCHEMES,
        "postgresql://user@host:5432/db",
    )
    airflow_home = _path("FLYWHEEL_AIRFLOW_HOME", home / "airflow")
    return Settings(
        home=home,
        warehouse_url=warehouse_url or "",
        landing_dir=_path("FLYWHEEL_LANDING_DIR", home / "landing"),
        quarantine_dir=_path("FLYWHEEL_QUARANTINE_DIR", home / "quarantine"),
        artifacts_dir=_location("FLYWHEEL_ARTIFACTS_DIR", home / "artifacts"),
        airflow_home=airflow_home,
        airflow_db_url=_url(
            "FLYWHEEL_AIRFLOW_DB_URL", None, None, "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"
        ),
        drift=_drift_rule(),
        training=_training_defaults(),
        trainer=_trainer_pod(),
        feature_store=_feature_store_backend(),
        metrics=_metrics(),
        evaluation=_evaluation(),
        serving=_serving(home),
    )

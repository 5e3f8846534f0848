"""Lay out a home's Feast repo: render ``feature_store.yaml`` from the template and copy the definitions.

``<FLYWHEEL_HOME>/feature_store/`` becomes a complete Feast repo (``feast -c`` works there), while the
package's ``repo/`` folder stays the one place where definitions and the config template are edited.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2

from flywheel.feature_store.settings import FeatureStoreSettings

#: The package's feature repo: definitions and the config template.
TEMPLATE_DIR = Path(__file__).resolve().parent / "repo"
DEFINITIONS_FILE = "definitions.py"
CONFIG_FILE = "feature_store.yaml"


def render_config(fs: FeatureStoreSettings) -> str:
    """The text of ``feature_store.yaml`` for one home and online store."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML; values are quoted by tojson
    )
    return env.get_template(CONFIG_FILE).render(
        project=fs.project,
        registry_path=str(fs.repo_dir / "registry.db"),
        online_store=fs.online_store,
        sqlite_path=str(fs.repo_dir / "online_store.db"),
        redis_connection=fs.redis_connection if fs.online_store == "redis" else "",
    )


def render_repo(fs: FeatureStoreSettings) -> Path:
    """Write the config and definitions into ``fs.repo_dir`` (only when they changed); return the folder."""
    fs.repo_dir.mkdir(parents=True, exist_ok=True)
    _write_if_changed(fs.repo_dir / CONFIG_FILE, render_config(fs))
    _write_if_changed(fs.repo_dir / DEFINITIONS_FILE, (TEMPLATE_DIR / DEFINITIONS_FILE).read_text())
    return fs.repo_dir


def _write_if_changed(path: Path, text: str) -> None:
    # Readers in other processes (serving, a parallel task) must never see a half-written file.
    if path.exists() and path.read_text() == text:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def load_definitions(repo_dir: Path) -> ModuleType:
    """Import the home's copy of the definitions under a name of its own (homes never share objects).

    Feast's own loader imports ``definitions`` by bare name, so a second home in the same process (a
    test, a CLI call) would get the first home's cached module, with the first home's data paths.
    """
    path = repo_dir / DEFINITIONS_FILE
    digest = hashlib.sha1(f"{path}:{path.read_text()}".encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"flywheel_feature_repo_{digest}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def feature_views(fs: FeatureStoreSettings) -> list[Any]:
    """The feature views of this home's definitions (rendering the repo first)."""
    from feast import FeatureView

    module = load_definitions(render_repo(fs))
    return [obj for obj in vars(module).values() if isinstance(obj, FeatureView)]


def repo_contents(module: ModuleType, project: str) -> Any:
    """Collect the module's Feast objects the way ``feast apply`` does, as a ``RepoContents``."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource
    from feast.feature_view import DUMMY_ENTITY
    from feast.project import Project
    from feast.repo_contents import RepoContents

    objects = [getattr(module, name) for name in dir(module) if not name.startswith("_")]
    feature_views = [o for o in objects if isinstance(o, FeatureView)]
    return RepoContents(
        projects=[Project(name=project)],
        data_sources=[o for o in objects if isinstance(o, DataSource)],
        feature_views=feature_views,
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        entities=[o for o in objects if isinstance(o, Entity)] + [DUMMY_ENTITY],
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        permissions=[],
    )

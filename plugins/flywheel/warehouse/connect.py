"""Open a warehouse from its URL: ``duckdb:///path.duckdb`` or ``postgresql://user@host:port/db``."""

from __future__ import annotations

from flywheel.warehouse.base import Warehouse, WarehouseError


def open_warehouse(url: str | None = None) -> Warehouse:
    """The warehouse at ``url`` (default: ``FLYWHEEL_WAREHOUSE_URL``, else DuckDB in ``FLYWHEEL_HOME``)."""
    if url is None:
        from flywheel.config import get_settings

        url = get_settings().warehouse_url
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "duckdb":
        from flywheel.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(url)
    if scheme in ("postgresql", "postgres"):
        from flywheel.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    raise WarehouseError(
        f"unsupported warehouse URL {url!r}: use duckdb:///path/to/file.duckdb "
        "or postgresql://user@host:5432/database (FLYWHEEL_WAREHOUSE_URL)"
    )

"""The warehouse: one small interface (run SQL with bound parameters, replace a partition, read Arrow).

DuckDB is the embedded default; PostgreSQL sits behind the same interface.
"""

from __future__ import annotations

from flywheel.warehouse.base import Warehouse, WarehouseError, validate_identifier
from flywheel.warehouse.connect import open_warehouse

__all__ = ["Warehouse", "WarehouseError", "open_warehouse", "validate_identifier"]

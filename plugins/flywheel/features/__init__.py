"""Features: dbt builds them from ``raw.*``, Great Expectations gates check them, and the hours that pass
are published into the feature store (``flywheel.feature_store``) and ``features.published_hours``."""

"""Training sets for the training tests, simulated once per session (the label depends on the features),
and a local S3 endpoint (moto's server) for the object store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from flywheel.simulate.training_set import simulated_training_set


@pytest.fixture(scope="session")
def training_frame() -> pd.DataFrame:
    """24 simulated hours, 48,000 impressions with their clicks: enough to learn position and affinity."""
    return simulated_training_set(hours=24, impressions_per_hour=2000, seed=7)


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    """12 simulated hours, about 10,000 impressions: a Ray search over it takes seconds per trial."""
    return simulated_training_set(hours=12, impressions_per_hour=1000, seed=11)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty bucket on moto's S3 server, listening on a free 127.0.0.1 port; yields ``s3://<bucket>``.

    The endpoint reaches botocore (s3fs, Ray, the trainer subprocess) as ``AWS_ENDPOINT_URL``, the way a
    MinIO deployment or the pod's secret sets it.
    """
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    from flywheel.local.processes import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "flywheel-test",
            "AWS_SECRET_ACCESS_KEY": "flywheel-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # an instance from an earlier test knows an older port
        boto3.client("s3").create_bucket(Bucket="flywheel-test")
        yield "s3://flywheel-test"
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()

"""Fleet frames on Dask: the lazy frames compute to the in-process ones.

Quick tests run Dask's synchronous scheduler in this process; the slow one
runs a ``distributed.LocalCluster(processes=True)`` whose workers are daemonic
processes, with a pool over the loader's fork threshold.
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pyarrow as pa
import pytest

import poolscope
from poolscope.fleet.dask import collect
from poolscope.generate import generate

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

FRAMES = ("records", "members", "messages", "wakes")


def rows(frame: pd.DataFrame) -> list[dict]:
    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False).to_pylist()


def assert_same_frame(lazy_result: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(lazy_result.columns) == list(expected.columns)
    assert rows(lazy_result) == rows(expected)
    for column in expected.columns:
        assert str(lazy_result[column].dtype) == str(expected[column].dtype), column


@pytest.fixture(scope="module")
def hosts_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask-fleet")
    for seed, pools, records in ((1, 2, 300), (2, 1, 450)):
        generate(folder / f"host-{seed}.db", pools=pools, records=records, seed=seed)
    return folder


@pytest.fixture
def hosts(hosts_dir, oracle, tmp_path):
    folder = tmp_path / "fleet"
    shutil.copytree(hosts_dir, folder)
    shutil.copyfile(oracle / "pool.db", folder / "sdk.db")
    with poolscope.fleet(folder, workers=1) as fleet:
        yield fleet


@pytest.mark.parametrize("upto", [None, 120])
def test_dask_frames_equal_in_process_frames(hosts, upto):
    for frame in FRAMES:
        lazy = hosts.to_dask(frame, upto=upto, partition_records=100)
        assert list(lazy.columns) == list(hosts.frame(frame, upto).columns)
        assert_same_frame(lazy.compute(scheduler="sync"), hosts.frame(frame, upto))
        assert_same_frame(collect(lazy), hosts.frame(frame, upto))
    # the partitions (and the fleet's own reads) use the index cache but save nothing in it
    poolscope.cache.wait()
    ours = {os.path.realpath(path) for path in hosts.databases}
    assert [entry.db for entry in poolscope.cache.entries() if entry.db in ours] == []


def test_partitions_are_pools_and_seq_ranges(hosts):
    pools = hosts.pools
    per_pool = [(s, p, r) for s, p, r in pools[["source", "pool_id", "records"]].itertuples(index=False, name=None)]
    lazy = hosts.to_dask("records", partition_records=100)
    assert lazy.npartitions == sum(-(-r // 100) for _, _, r in per_pool)
    assert hosts.to_dask("messages").npartitions == len(per_pool)
    # each partition holds one pool's records, in seq order, at most 100 of them
    parts = [lazy.get_partition(i).compute(scheduler="sync") for i in range(lazy.npartitions)]
    assert all(0 < len(p) <= 100 and p["pool_id"].nunique() == 1 and p["seq"].is_monotonic_increasing for p in parts)


def test_column_projection_reaches_the_partitions(hosts):
    lazy = hosts.to_dask("records")[["source", "seq", "kind"]]
    readers = [e for e in lazy.optimize(fuse=False).expr.walk() if type(e).__name__.startswith("FromMap")]
    assert readers and all(e.operand("columns") == ["source", "seq", "kind"] for e in readers)
    assert_same_frame(lazy.compute(scheduler="sync"), hosts.records_df()[["source", "seq", "kind"]])


def test_bad_arguments_are_typed_errors(hosts):
    with pytest.raises(poolscope.InvalidInputError):
        hosts.to_dask("snapshots")
    with pytest.raises(poolscope.InvalidInputError):
        hosts.to_dask("records", partition_records=-5)


@pytest.fixture(scope="module")
def cluster_client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.slow
def test_local_cluster_computes_the_in_process_frames(tmp_path, cluster_client):
    """Daemonic Dask workers read a pool over the fork threshold in one process."""
    big = tmp_path / "big.db"
    generate(big, pools=1, records=21_000, seed=3, members_cap=20)
    generate(tmp_path / "small.db", pools=2, records=300, seed=4)
    with poolscope.fleet(tmp_path, workers=1) as hosts:
        # whole pools in one partition: the worker's load is over the fork threshold
        lazy = hosts.to_dask("records", partition_records=50_000)
        assert_same_frame(lazy.compute(), hosts.records_df())
        assert_same_frame(hosts.to_dask("messages").compute(), hosts.messages_df())
        split = hosts.to_dask("records", partition_records=5_000)
        assert split.npartitions >= 5
        assert_same_frame(split.compute(), hosts.records_df())
        counts = split.groupby("source", observed=True).size().compute()
        assert counts.to_dict() == hosts.records_df().groupby("source", observed=True).size().to_dict()
        # collected here, partition by partition: the same frames, no concatenation on a worker
        assert_same_frame(collect(split), hosts.records_df())
        assert_same_frame(collect(split[["source", "seq", "kind"]]), hosts.records_df()[["source", "seq", "kind"]])
        assert_same_frame(collect(hosts.to_dask("wakes")), hosts.wakes_df())

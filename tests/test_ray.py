"""Ray cluster runs (--ray): a real local cluster on 127.0.0.1 — a head and one more
worker node, started and stopped here — codes a multi-member file and a directory into
the very archives one process makes and decodes them back; a worker killed mid-run is
replaced and the archive is still exact, and with no retries left the run fails clearly.

Skipped when Ray is not installed, unless LMPRESS_REQUIRE_RAY=1 (CI sets it)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TEXT

# every node, and every driver the tests start, on loopback: Ray's switch for the
# single-machine clusters of Windows and macOS (on Linux it would use the interface
# address); read when ray is imported, so set before
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
if os.environ.get("LMPRESS_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")

from lmpress.cluster import PoolError, RayPool  # noqa: E402

DATA = (TEXT * 12).encode()
MEMBER = "3000"


@pytest.fixture(scope="module")
def address():
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def _lmpress(*args, stdin=None):
    out = subprocess.run([sys.executable, "-m", "lmpress", *args], input=stdin,
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def _ray_workers(function: str) -> list[int]:
    """PIDs of Ray worker processes running `function` now (Ray names them ray::NAME)."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in ps.splitlines()
            if line.split()[1:2] == [f"ray::{function}"]]


def test_two_nodes_are_up(address):
    import ray

    ray.init(address=address, log_to_driver=False)
    try:
        assert address.startswith("127.0.0.1:") and len(ray.nodes()) == 2
    finally:
        ray.shutdown()


def test_cluster_archive_equals_single_process(address, tiny_model_path, tmp_path):
    m = ["-m", tiny_model_path, "--member-bytes", MEMBER]
    single = _lmpress(*m, "-c", "-", stdin=DATA)
    on_cluster = _lmpress(*m, "--ray", address, "-c", "-", stdin=DATA)
    assert on_cluster == single and single.count(b"\x89LMP") >= 10
    assert _lmpress("-m", tiny_model_path, "--ray", address, "-d", "-c", "-",
                    stdin=on_cluster) == DATA


def test_cluster_directory(address, tiny_model_path, tmp_path):
    files = {f"f{i}.txt": DATA[:2500 * (i + 1)] for i in range(5)}
    (tmp_path / "d").mkdir()
    for name, data in files.items():
        (tmp_path / "d" / name).write_bytes(data)
    m = ["-m", tiny_model_path, "--member-bytes", MEMBER]
    _lmpress(*m, "--ray", address, "-r", "--rm", str(tmp_path / "d"))
    for name, data in files.items():
        assert not (tmp_path / "d" / name).exists()
        assert (tmp_path / "d" / f"{name}.lmp").read_bytes() == _lmpress(*m, "-c", "-",
                                                                         stdin=data)
    _lmpress("-m", tiny_model_path, "--ray", address, "-d", "-r", str(tmp_path / "d"))
    for name, data in files.items():
        assert (tmp_path / "d" / name).read_bytes() == data


def test_killed_worker_is_replaced_and_the_archive_is_exact(address, tiny_model_path,
                                                             tmp_path):
    data = DATA * 2  # about 27 members: long enough to kill a worker in the middle
    m = ["-m", tiny_model_path, "--member-bytes", MEMBER]
    (tmp_path / "big.txt").write_bytes(data)
    run = subprocess.Popen([sys.executable, "-m", "lmpress", *m, "--ray", address,
                            str(tmp_path / "big.txt")], stderr=subprocess.PIPE)
    killed, deadline = [], time.monotonic() + 300
    while not killed and run.poll() is None and time.monotonic() < deadline:
        for pid in _ray_workers("compress_member")[:1]:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.02)
    assert run.wait(timeout=600) == 0, run.stderr.read().decode()
    assert killed, "the run ended before a worker could be killed; make it longer"
    archive = (tmp_path / "big.txt.lmp").read_bytes()
    assert archive == _lmpress(*m, "-c", "-", stdin=data)
    assert _lmpress("-m", tiny_model_path, "-d", "-c", "-", stdin=archive) == data


def test_no_retries_left_is_a_clear_error(address, tiny_model):
    pool = RayPool(tiny_model, address, max_retries=0)
    try:
        jobs = [pool.compress(DATA) for _ in range(6)]
        deadline = time.monotonic() + 120
        while not (pids := _ray_workers("compress_member")) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(pids[0], signal.SIGKILL)
        with pytest.raises(PoolError, match="worker was lost.*nothing was written"):
            for job in jobs:
                job.result()
    finally:
        pool.close()


def test_bench_and_rank_on_the_cluster(address, tiny_model_path, tmp_path):
    from test_cluster import _bench_and_rank

    here = _bench_and_rank(tiny_model_path, tmp_path)
    assert _bench_and_rank(tiny_model_path, tmp_path, "--ray", address) == here

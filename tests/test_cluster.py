"""Scale-out (cluster/): members coded by local worker processes (-T N) give the very
archive one process makes, directories (-r) give one such archive per file, and a lost
worker gives a clear error — never a corrupt file. The Ray side is tests/test_ray.py."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TEXT

import lmpress
from lmpress.cluster import LocalPool, PoolError

DATA = (TEXT * 12).encode()  # about 40 KB: 14 members of 3,000 bytes
MEMBER = "3000"


def _lmpress(*args, stdin=None, status=0):
    out = subprocess.run([sys.executable, "-m", "lmpress", *args], input=stdin,
                         capture_output=True, timeout=600)
    assert out.returncode == status, out.stderr.decode()
    return out.stdout if status == 0 else out.stderr.decode()


def _tree(root):
    return {os.path.relpath(os.path.join(d, n), root): open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(root) for n in names}


def test_workers_make_the_single_process_archive(tiny_model_path, tmp_path):
    m = ["-m", tiny_model_path, "--member-bytes", MEMBER]
    one = _lmpress(*m, "-c", "-", stdin=DATA)
    two = _lmpress(*m, "-T", "2", "-c", "-", stdin=DATA)
    assert one == two and one.count(b"\x89LMP") >= 10
    assert _lmpress("-m", tiny_model_path, "-T", "2", "-d", "-c", "-", stdin=two) == DATA


def test_recursive_directory_one_archive_per_file(tiny_model_path, tmp_path):
    for i in range(4):
        (tmp_path / "d" / f"s{i % 2}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / f"s{i % 2}" / f"f{i}.txt").write_bytes(DATA[:4000 * (i + 1)])
    (tmp_path / "d" / "old.lmp").write_bytes(b"not compressed again")
    originals = _tree(tmp_path / "d")
    m = ["-m", tiny_model_path, "--member-bytes", MEMBER]
    _lmpress(*m, "-T", "2", "-r", str(tmp_path / "d"))
    made = _tree(tmp_path / "d")
    for name, data in originals.items():
        if name.endswith(".txt"):
            assert made[name + ".lmp"] == _lmpress(*m, "-c", "-", stdin=data)
    assert "old.lmp.lmp" not in made
    for name in originals:
        if name.endswith(".txt"):
            os.remove(tmp_path / "d" / name)
    err = _lmpress("-m", tiny_model_path, "-T", "2", "-d", "-r", str(tmp_path / "d"),
                   status=1)  # the one file that is no archive fails alone, in one line
    assert err.count("\n") == 1 and "old.lmp: not an lmpress archive" in err
    back = _tree(tmp_path / "d")
    assert all(back[name] == data for name, data in originals.items())


def test_open_with_a_pool_writes_and_reads_the_same_bytes(tiny_model):
    single = io.BytesIO()
    with lmpress.open(single, "wb", model=tiny_model, member_bytes=3000) as f:
        f.write(DATA)
    with LocalPool(tiny_model, 2) as pool:
        pooled = io.BytesIO()
        with lmpress.open(pooled, "wb", member_bytes=3000, pool=pool) as f:
            f.write(DATA[:5000])
            f.write(DATA[5000:])
        assert pooled.getvalue() == single.getvalue()
        with lmpress.open(io.BytesIO(pooled.getvalue()), "rb", pool=pool) as f:
            assert f.read() == DATA


def test_a_killed_local_worker_is_a_clear_error(tiny_model):
    """Whatever the worker was doing when it died: the jobs in flight fail with PoolError
    and closing the pool does not hang on the workers left (they may wait on a lock the
    dead one held)."""
    with LocalPool(tiny_model, 2) as pool:
        archive, _ = pool.compress(DATA).result()
        assert pool.decompress(archive).result() == DATA
        jobs = [pool.submit(time.sleep, 60) for _ in range(2)] + [pool.compress(DATA)]
        time.sleep(0.5)  # both workers hold a job that lasts far longer than the test
        os.kill(next(iter(pool._executor._processes)), signal.SIGKILL)
        with pytest.raises(PoolError, match="worker was lost.*nothing was written"):
            for job in jobs:
                job.result()


def test_float_models_refuse_workers(tmp_path):
    from lmpress.cli import main

    (tmp_path / "a.txt").write_bytes(b"x")
    with pytest.raises(PoolError, match="one process"):
        LocalPool("hf:/nonexistent", 2)
    assert main(["--ray", "127.0.0.1:1", "-c", str(tmp_path / "a.txt")]) == 1


def _bench_and_rank(tiny_model_path, tmp_path, *workers):
    """Bench rows (bytes per file) and the rank table, made with the given worker flags."""
    import json

    d = tmp_path / "docs"
    if not d.exists():
        d.mkdir()
        for i in range(4):
            (d / f"f{i}.txt").write_bytes(DATA[3000 * i:3000 * i + 2500 + 700 * i])
    out = tmp_path / f"bench{len(workers)}.json"
    _lmpress("bench", "-m", tiny_model_path, "--codecs", "lmpress", "-q", "--json", str(out),
             *workers, str(d))
    rows = {r["name"]: (r["n_bytes_out"], r["status"]) for r in json.load(open(out))["rows"]}
    table = _lmpress("rank", "-m", tiny_model_path, "--observer", tiny_model_path,
                     "--performer", tiny_model_path, "-q", *workers, str(d))
    return rows, table


def test_bench_and_rank_on_workers_give_the_same_numbers(tiny_model_path, tmp_path):
    rows, table = _bench_and_rank(tiny_model_path, tmp_path)
    assert len(rows) == 4 and all(status == "ok" for _, status in rows.values())
    assert table.count(b"\n") == 5
    assert _bench_and_rank(tiny_model_path, tmp_path, "-T", "2") == (rows, table)


def test_workers_end_when_the_command_is_killed(tiny_model_path, tmp_path):
    """Killed mid-run (30 members of 200 KB take the tiny model half a minute or more),
    the workers stop within seconds rather than finishing members nobody will write."""
    (tmp_path / "big.txt").write_bytes(DATA * 150)
    run = subprocess.Popen([sys.executable, "-m", "lmpress", "-m", tiny_model_path,
                            "--member-bytes", "200000", "-T", "2", str(tmp_path / "big.txt")])
    deadline = time.monotonic() + 120
    while not (workers := _children(run.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers, "no worker process appeared"
    time.sleep(3.0)  # the workers are loaded and coding
    run.kill()
    run.wait()
    deadline = time.monotonic() + 4
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    assert not (tmp_path / "big.txt.lmp").exists()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]

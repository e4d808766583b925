"""The lmpress command: round trips, -t/-l/-v, and every kind of bad input giving one
line on stderr, a non-zero exit, and nothing half-written."""

import io
import os
import shutil
import subprocess
import sys

import pytest
from conftest import TEXT

from lmpress import cli
from lmpress.codec import Compressor
from lmpress.container import seal

DATA = TEXT.encode()[:600]


class _Terminal(io.TextIOWrapper):
    def isatty(self):
        return True


@pytest.fixture
def run(tmp_path, monkeypatch, capsys, tiny_model_path):
    """run(*argv, stdin=b"", model=True, tty=False) -> (status, stdout bytes, stderr text);
    tty=True makes stdin and stdout look like a terminal."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_bytes(DATA)

    def invoke(*argv, stdin=b"", model=True, tty=False):
        wrapper = _Terminal if tty else io.TextIOWrapper
        out = wrapper(io.BytesIO())
        monkeypatch.setattr(sys, "stdin", wrapper(io.BytesIO(stdin)))
        monkeypatch.setattr(sys, "stdout", out)
        rc = cli.main((["-m", tiny_model_path] if model else []) + list(argv))
        out.flush()
        return rc, out.buffer.getvalue(), capsys.readouterr().err

    return invoke


def _leftovers(path):
    return sorted(p.name for p in path.iterdir() if p.name.endswith(".tmp"))


def _one_error_line(err, *fragments):
    assert err.count("\n") == 1 and err.startswith("lmpress: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_file_round_trip_keeps_input(run, tmp_path):
    os.chmod(tmp_path / "a.txt", 0o640)
    assert run("a.txt") == (0, b"", "")
    assert (tmp_path / "a.txt").read_bytes() == DATA
    assert os.stat(tmp_path / "a.txt.lmp").st_mode & 0o777 == 0o640
    (tmp_path / "a.txt").rename(tmp_path / "orig.txt")
    assert run("-d", "a.txt.lmp")[0] == 0
    assert (tmp_path / "a.txt").read_bytes() == DATA and (tmp_path / "a.txt.lmp").exists()
    assert _leftovers(tmp_path) == []


def test_stdout_stdin_and_dash(run):
    rc, archive, _ = run("-c", "a.txt")
    assert rc == 0 and archive.startswith(b"\x89LMP")
    assert run(stdin=DATA)[:2] == (0, archive)  # no FILE: stdin -> stdout, like tar -I
    assert run("-", stdin=DATA)[:2] == (0, archive)
    assert run("-d", stdin=archive)[:2] == (0, DATA)
    assert run("-dc", "-", stdin=archive)[:2] == (0, DATA)


def test_rm_output_and_levels_flags(run, tmp_path):
    assert run("-9", "--rm", "-o", "x.lmp", "a.txt")[0] == 0
    assert not (tmp_path / "a.txt").exists()
    assert run("-d", "-o", "back.txt", "x.lmp")[0] == 0
    assert (tmp_path / "back.txt").read_bytes() == DATA


def test_multi_member_list_and_test(run, tmp_path):
    assert run("--member-bytes", "250", "a.txt")[0] == 0
    rc, out, err = run("-l", "-v", "a.txt.lmp", model=False)
    assert rc == 0 and err == ""
    header, row = out.decode().splitlines()
    assert "original" in header and "bits/B" in header
    size = (tmp_path / "a.txt.lmp").stat().st_size
    assert row.split()[:2] == [str(len(DATA)), str(size)]
    assert "tiny-test" in row and "(3 members)" in row and row.endswith("a.txt.lmp")
    rc, _, err = run("-t", "-v", "a.txt.lmp")
    assert rc == 0 and "OK" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "a.txt.lmp"]


def test_verbose_reports_ratio_estimate_and_speed(run):
    rc, _, err = run("-v", "a.txt")
    assert rc == 0
    assert f"a.txt: {len(DATA)} -> " in err
    for fragment in ("bits/B", "model estimate", "KB/s"):
        assert fragment in err
    assert run("-q", "-f", "a.txt") == (0, b"", "")


def test_test_detects_flipped_byte(run, tmp_path):
    run("a.txt")
    archive = bytearray((tmp_path / "a.txt.lmp").read_bytes())
    archive[len(archive) // 2] ^= 0x10
    (tmp_path / "a.txt.lmp").write_bytes(archive)
    rc, out, err = run("-t", "a.txt.lmp")
    assert rc == 1 and out == b""
    _one_error_line(err, "a.txt.lmp: ", "CRC mismatch", "restore it")


@pytest.fixture
def lm_archive(tiny_model, tmp_path):
    """An archive that needs the model to decode (every stream LM-coded)."""
    archive = Compressor(tiny_model, fallback=False).compress(DATA)
    (tmp_path / "lm.lmp").write_bytes(archive)
    return archive


def test_checksum_failure_writes_nothing(run, tmp_path, lm_archive):
    body = bytearray(lm_archive[:-4])
    body[-3] ^= 0x55  # damage the last LM payload, then reseal so the CRC passes
    (tmp_path / "bad.lmp").write_bytes(seal(bytes(body)))
    rc, out, err = run("-d", "bad.lmp")
    assert rc == 1
    _one_error_line(err, "bad.lmp: ", "damaged")
    assert not (tmp_path / "bad").exists() and _leftovers(tmp_path) == []
    rc, out, err = run("-dc", "bad.lmp")
    assert rc == 1 and out == b""


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty input"),
    (b"hello, not an archive\n", "not an lmpress archive"),
    (None, "truncated"),
])
def test_foreign_empty_truncated(run, tmp_path, lm_archive, content, fragment):
    if content is None:
        content = lm_archive[:len(lm_archive) // 2]
    (tmp_path / "x.lmp").write_bytes(content)
    rc, _, err = run("-d", "x.lmp")
    assert rc == 1
    _one_error_line(err, "x.lmp: ", fragment)
    assert not (tmp_path / "x").exists() and _leftovers(tmp_path) == []
    assert (tmp_path / "x.lmp").read_bytes() == content


def test_model_not_installed(run, tmp_path, lm_archive):
    rc, _, err = run("-d", "lm.lmp", model=False)
    assert rc == 1
    _one_error_line(err, "lm.lmp: ", "'tiny-test'", "not installed", "-m")
    assert not (tmp_path / "lm").exists()
    rc, _, err = run("-m", "no-such-model", "a.txt", model=False)
    _one_error_line(err, "a.txt: ", "'no-such-model' is not installed")
    assert rc == 1 and not (tmp_path / "a.txt.lmp").exists()
    assert run("-d", "lm.lmp")[0] == 0 and (tmp_path / "lm").read_bytes() == DATA


def test_existing_output_needs_force(run, tmp_path):
    (tmp_path / "a.txt.lmp").write_bytes(b"precious")
    rc, _, err = run("a.txt")
    assert rc == 1
    _one_error_line(err, "a.txt: ", "a.txt.lmp already exists", "-f")
    assert (tmp_path / "a.txt.lmp").read_bytes() == b"precious"
    assert run("-f", "a.txt")[0] == 0
    assert (tmp_path / "a.txt.lmp").read_bytes().startswith(b"\x89LMP")


def test_unwritable_and_missing_directories(run, tmp_path, monkeypatch):
    rc, _, err = run("-o", "nodir/x.lmp", "a.txt")
    assert rc == 1
    _one_error_line(err, "a.txt: ", "does not exist", "-c")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("lmpress.cli_io.tempfile.mkstemp", refuse)
    rc, _, err = run("a.txt")
    assert rc == 1
    _one_error_line(err, "a.txt: ", "permission denied", "-o OUTPUT")
    assert not (tmp_path / "a.txt.lmp").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(run, tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    rc, _, err = run("-o", "ro/x.lmp", "a.txt")
    assert rc == 1 and "permission denied" in err


def test_directory_missing_file_and_continuing(run, tmp_path):
    (tmp_path / "d").mkdir()
    rc, _, err = run("d", "missing.txt", "a.txt")
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith("lmpress: d: is a directory") and "tar -I lmpress" in lines[0]
    assert lines[1] == "lmpress: missing.txt: no such file or directory; check the name"
    assert (tmp_path / "a.txt.lmp").exists()  # the good file after the errors was done


def test_unknown_suffix(run, tmp_path):
    run("-o", "archive.bin", "a.txt")
    rc, _, err = run("-d", "archive.bin")
    assert rc == 1
    _one_error_line(err, "archive.bin: unknown suffix", "-o OUTPUT", "-c")
    assert run("-d", "-o", "out.txt", "archive.bin")[0] == 0
    assert (tmp_path / "out.txt").read_bytes() == DATA
    (tmp_path / "z.lmp").write_bytes(DATA)
    rc, _, err = run("z.lmp")
    assert rc == 1
    _one_error_line(err, "z.lmp: already has the .lmp suffix", "-f")


def test_interrupt_removes_temp(run, tmp_path, monkeypatch):
    def interrupted(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(Compressor, "compress", interrupted)
    rc, _, err = run("a.txt")
    assert rc == 130
    _one_error_line(err, "a.txt: interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == DATA


def test_terminal_guards(run):
    rc, out, err = run("-c", "a.txt", tty=True)
    assert rc == 1 and out == b""
    _one_error_line(err, "a.txt: compressed data not written to a terminal", "-f")
    rc, out, err = run("-d", tty=True)
    assert rc == 1
    _one_error_line(err, "(stdin): compressed data not read from a terminal")


def test_progress_bar_on_a_terminal(run, monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal(io.BytesIO()))
    assert run("a.txt")[0] == 0
    assert run("-t", "a.txt.lmp")[0] == 0
    assert sys.stderr.buffer.getvalue()  # tqdm drew something


@pytest.mark.parametrize("argv", [
    ["-o", "x", "a.txt", "b.txt"], ["--bogus"], ["-T", "-1"], ["-d", "-l"], ["-k", "--rm"],
])
def test_usage_errors_exit_2(run, argv):
    rc, _, err = run(*argv)
    assert rc == 2 and "usage:" in err


def test_threads_models_version_and_unlmpress(run, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert run("-T", "1", "a.txt")[0] == 0
    assert os.environ["OMP_NUM_THREADS"] == "1"
    rc, out, _ = run("models", model=False)
    assert rc == 0 and out
    rc, out, _ = run("--version", model=False)
    assert rc == 0 and out.startswith(b"lmpress ")
    monkeypatch.setattr(sys, "argv", ["/usr/bin/unlmpress"])
    (tmp_path / "a.txt").unlink()
    assert run("a.txt.lmp")[0] == 0 and (tmp_path / "a.txt").read_bytes() == DATA


def test_threads_on_a_single_member_run_in_this_process(run, tmp_path, monkeypatch):
    """-T 2 on one file of one member: threads in this process, no worker pool, and the
    archive of -T 1; with two members, the worker pool as before."""
    from lmpress import fileobj

    made = []
    original = fileobj.LmpressFile.__init__

    def spy(self, *args, **kwargs):
        made.append((kwargs.get("threads"), kwargs.get("pool")))
        original(self, *args, **kwargs)

    monkeypatch.setattr(fileobj.LmpressFile, "__init__", spy)
    assert run("-T", "1", "-c", "a.txt")[0] == 0
    rc, one, _ = run("-T", "1", "-c", "a.txt")
    rc, two, _ = run("-T", "2", "-c", "a.txt")
    assert rc == 0 and two == one and made[-1] == (2, None)
    (tmp_path / "a.lmp").write_bytes(two)
    rc, back, _ = run("-T", "2", "-d", "-c", "a.lmp")
    assert rc == 0 and back == DATA and made[-1] == (2, None)
    rc, _, _ = run("-T", "2", "--member-bytes", "300", "-c", "a.txt")
    assert rc == 0 and made[-1][0] == 1 and made[-1][1] is not None


def test_file_named_like_a_subcommand(run, tmp_path):
    (tmp_path / "models").write_bytes(DATA)
    assert run("./models")[0] == 0 and (tmp_path / "models.lmp").exists()


def test_subprocess_pipe_and_tar(tmp_path, tiny_model_path):
    cmd = f"{sys.executable} -m lmpress -m {tiny_model_path}"
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_bytes(DATA)
    packed = subprocess.run([*cmd.split(), "-c", "dir/f.txt"], cwd=tmp_path,
                            capture_output=True, check=True).stdout
    back = subprocess.run([*cmd.split(), "-d"], input=packed, capture_output=True, check=True)
    assert back.stdout == DATA and back.stderr == b""
    bad = subprocess.run([*cmd.split(), "-d"], input=b"junk", capture_output=True)
    assert bad.returncode == 1 and bad.stderr.count(b"\n") == 1
    if shutil.which("tar") is None:
        return
    subprocess.run(["tar", "-I", cmd, "-cf", "d.tar.lmp", "dir"], cwd=tmp_path, check=True)
    shutil.rmtree(tmp_path / "dir")
    subprocess.run(["tar", "-I", cmd, "-xf", "d.tar.lmp"], cwd=tmp_path, check=True)
    assert (tmp_path / "dir" / "f.txt").read_bytes() == DATA


def test_quality_codes_the_reconstruction_the_api_reports(run, tmp_path, tiny_model):
    from lmpress.lossy import compress as lossy_compress

    text = (b"The model reads the text and the coder spends few bits on words it expects. "
            b"Version 2.4 is at https://example.org/x and costs 17 dollars.\n") * 3
    (tmp_path / "p.txt").write_bytes(text)
    status, _, err = run("--quality", "50", "-v", "p.txt")
    assert status == 0 and "quality 50" in err
    expected = lossy_compress(text, 50, model=tiny_model, lossless=False, semantic=False)
    assert (tmp_path / "p.txt.lmp").read_bytes() == expected.archive
    status, out, _ = run("-d", "-c", "p.txt.lmp")
    assert status == 0 and out == expected.reconstruction
    assert b"2.4" in out and b"https://example.org/x" in out and b"17" in out
    assert run("--quality", "100", "-c", "p.txt")[1] == run("-c", "p.txt")[1]
    status, _, err = run("-d", "--quality", "50", "p.txt.lmp")
    assert status == 2 and "apply when compressing" in err


def test_numpy_loads_after_the_thread_settings():
    """Building the parser (lossy options included) must not import numpy: its BLAS
    reads the thread variables once, at import, and the CLI sets them after parsing."""
    code = ("import sys; from lmpress import cli; cli.build_parser(); "
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr

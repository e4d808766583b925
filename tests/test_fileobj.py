"""LmpressFile / open(): streaming in any chunk size gives the same bytes as one-shot."""

import io

import pytest
from conftest import TEXT
from hypothesis import given, settings
from hypothesis import strategies as st

import lmpress
from lmpress.codec import Compressor, Decompressor
from lmpress.errors import FormatError, ModelNotFoundError, OutputLimitError

DATA = TEXT.encode()[:700] + bytes(range(256)) + b"\xff\xfe tail\n"


def _write(model, data: bytes, chunks=(), **kw) -> bytes:
    bio = io.BytesIO()
    with lmpress.open(bio, "wb", model=model, **kw) as f:
        pos = 0
        for n in chunks:
            f.write(data[pos:pos + n])
            pos += n
        f.write(data[pos:])
    return bio.getvalue()


class _Tracking(io.BytesIO):
    """Remembers how far it has been read, to prove reads stay one member ahead."""

    high_water = 0

    def read(self, n=-1):
        data = super().read(n)
        self.high_water = max(self.high_water, self.tell())
        return data


def test_one_member_equals_one_shot(tiny_model):
    archive = _write(tiny_model, DATA, chunks=(1, 7, 300))
    assert archive == Compressor(tiny_model).compress(DATA)


def test_members_every_member_bytes(tiny_model):
    archive = _write(tiny_model, DATA, member_bytes=400)
    assert Decompressor(tiny_model).decompress(archive) == DATA
    one = Compressor(tiny_model)
    assert archive == b"".join(one.compress(DATA[i:i + 400]) for i in range(0, len(DATA), 400))


@settings(max_examples=8, deadline=None)
@given(write_chunks=st.lists(st.integers(0, 300), max_size=6),
       read_size=st.integers(1, 500), member_bytes=st.integers(150, 2000))
def test_any_chunk_sizes_round_trip(tiny_model, write_chunks, read_size, member_bytes):
    archive = _write(tiny_model, DATA, write_chunks, member_bytes=member_bytes)
    out = []
    with lmpress.open(io.BytesIO(archive), model=tiny_model) as f:
        while chunk := f.read(read_size):
            assert len(chunk) == read_size or f.read(1) == b""
            out.append(chunk)
    assert b"".join(out) == DATA


def test_readline_iteration_and_text_mode(tiny_model, tmp_path):
    path = tmp_path / "t.lmp"
    with lmpress.open(path, "wt", model=tiny_model, encoding="utf-8", member_bytes=300) as f:
        f.write(TEXT[:900])
    with lmpress.open(path, model=tiny_model) as f:
        assert list(f) == TEXT[:900].encode().splitlines(keepends=True)
    with lmpress.open(path, "rt", model=tiny_model, encoding="utf-8") as f:
        assert f.readline() == TEXT.splitlines(keepends=True)[0]
        assert f.read() == TEXT[:900][len(TEXT.splitlines(keepends=True)[0]):]
    with lmpress.open(path, model=tiny_model) as f:
        assert f.readline(5) == TEXT[:5].encode()
        assert f.read1(3) == TEXT[5:8].encode() and f.tell() == 8
        assert not f.seekable() and f.readable() and not f.writable()
        with pytest.raises(io.UnsupportedOperation):
            f.seek(0)
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
    assert f.closed
    with pytest.raises(ValueError):
        f.read()


def test_append_and_exclusive_modes(tiny_model, tmp_path):
    path = tmp_path / "a.lmp"
    with lmpress.open(path, "xb", model=tiny_model) as f:
        f.write(b"first\n")
    with lmpress.open(path, "ab", model=tiny_model) as f:
        f.write(b"second\n")
    assert lmpress.open(path, model=tiny_model).read() == b"first\nsecond\n"
    with pytest.raises(FileExistsError):
        lmpress.open(path, "x", model=tiny_model)


def test_empty_file_is_an_empty_member(tiny_model):
    archive = _write(tiny_model, b"")
    assert archive and lmpress.open(io.BytesIO(archive), model=tiny_model).read() == b""


def test_reading_stays_one_member_ahead(tiny_model, monkeypatch):
    monkeypatch.setattr("lmpress.fileobj._READ_CHUNK", 64)
    archive = _write(tiny_model, DATA, member_bytes=200)
    fp = _Tracking(archive)
    with lmpress.open(fp, model=tiny_model) as f:
        assert f.read(10) == DATA[:10]
        assert fp.high_water < len(archive)  # the later members are still unread
        assert f.read() == DATA[10:]


def test_max_output_size(tiny_model):
    archive = _write(tiny_model, DATA, member_bytes=300)
    with lmpress.open(io.BytesIO(archive), model=tiny_model, max_output_size=len(DATA)) as f:
        assert f.read() == DATA
    f = lmpress.open(io.BytesIO(archive), model=tiny_model, max_output_size=500)
    assert f.read(300) == DATA[:300]
    with pytest.raises(OutputLimitError, match="more than the allowed 500"):
        f.read()


@pytest.mark.parametrize("mangle, message", [
    (lambda a: b"", "empty input"),
    (lambda a: a[:-9], "truncated"),
    (lambda a: a[:20], "truncated"),
    (lambda a: b"plain text, not an archive", "not an lmpress archive"),
    (lambda a: a + b"garbage", "after archive member 1"),
    (lambda a: a[:60] + bytes([a[60] ^ 1]) + a[61:], "damaged|CRC"),
])
def test_bad_archives(tiny_model, mangle, message):
    archive = mangle(_write(tiny_model, DATA[:300]))
    with pytest.raises(FormatError, match=message):
        lmpress.open(io.BytesIO(archive), model=tiny_model).read()


def test_missing_model_leaves_no_file(tmp_path):
    path = tmp_path / "x.lmp"
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        lmpress.open(path, "wb", model="no-such-model")
    assert not path.exists()


def test_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="invalid mode"):
        lmpress.open(io.BytesIO(), "rw", model=tiny_model)
    with pytest.raises(ValueError):
        lmpress.open(io.BytesIO(), "rb", model=tiny_model, encoding="utf-8")
    with pytest.raises(ValueError):
        lmpress.open(io.BytesIO(), "wb", model=tiny_model, member_bytes=0)
    with pytest.raises(TypeError):
        lmpress.open(42, "rb", model=tiny_model)

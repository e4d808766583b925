"""Fetching pinned packages, offline (apt-get replaced)."""

from __future__ import annotations

import subprocess

from lmpress.train import debs


def test_pinned_versions_are_fetched_or_replaced_with_a_warning(tmp_path, monkeypatch) -> None:
    for v in ("1%3a1.0-1", "1%3a1.0-2"):
        (tmp_path / f"pkg_{v}_all.deb").write_bytes(b"deb")
    got = debs.fetch_package("pkg", tmp_path, print, "1:1.0-1")
    assert got.name == "pkg_1%3a1.0-1_all.deb"
    asked, logs = [], []

    def download(spec, cache):
        asked.append(spec)
        if "=" in spec:
            raise subprocess.CalledProcessError(100, "apt-get")
        return cache / "pkg_1%3a1.0-3_all.deb"

    monkeypatch.setattr(debs, "_download", download)
    got = debs.fetch_package("pkg", tmp_path, logs.append, "1:0.9-1")
    assert asked == ["pkg=1:0.9-1", "pkg"] and got.name == "pkg_1%3a1.0-3_all.deb"
    assert "1:0.9-1 (the recorded version) cannot be downloaded" in logs[0]

"""Debian packages for the corpus builder: fetch a package (the version a committed manifest
records, when apt can still give it), read its version, hash it. Standard library only."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

Log = Callable[[str], None]


def load_pins(paths: list[Path]) -> dict[str, dict]:
    """Source name -> its manifest entry (version, sha256, ...) in the given manifests."""
    pins: dict[str, dict] = {}
    for path in paths:
        if path.exists():
            for entry in json.loads(path.read_text())["packages"]:
                pins[entry["source"]] = entry
    return pins


def _file_version(deb: Path) -> str:
    """The version in an ``apt-get download`` file name (an epoch's ':' is written %3a)."""
    return deb.name.split("_")[1].replace("%3a", ":")


def _download(spec: str, cache: Path) -> Path:
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run(["apt-get", "download", "-q", spec], cwd=tmp, check=True,
                       capture_output=True)
        (deb,) = Path(tmp).glob("*.deb")
        return deb.replace(cache / deb.name)


def fetch_package(package: str, cache: Path, log: Log, version: str | None = None) -> Path:
    """The cached .deb of ``package``, downloaded with apt-get if absent. With ``version``
    (the one a committed manifest records), that version; when apt cannot give it any more,
    a warning and the current version."""
    cache.mkdir(parents=True, exist_ok=True)
    cached = sorted(cache.glob(f"{package}_*.deb"))
    if version:
        pinned = [deb for deb in cached if _file_version(deb) == version]
        if pinned:
            return pinned[0]
        try:
            return _download(f"{package}={version}", cache)
        except subprocess.CalledProcessError:
            log(f"warning: {package} {version} (the recorded version) cannot be downloaded "
                "(apt-get update may help); taking the current version, so this source's "
                "text may differ")
            try:
                return _download(package, cache)
            except subprocess.CalledProcessError:
                if not cached:
                    raise
    if cached:
        if len(cached) > 1:
            log(f"warning: several cached debs for {package}, using {cached[-1].name}")
        return cached[-1]
    return _download(package, cache)


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                          capture_output=True, text=True).stdout.strip()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

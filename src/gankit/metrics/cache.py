"""Where evaluation caches live: ``$GANKIT_CACHE`` or ``~/.cache/gankit``."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..runtime import cache_root


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def key(*items: object) -> str:
    """A short stable hash of JSON-able items (data set identity, extractor, preprocessing, n)."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_fingerprint(path: str) -> tuple[int, int, int]:
    """(files, bytes, newest mtime in ns) under a folder: what is cached for a folder (reference
    features, its classifier) is recomputed when its contents change."""
    count = size = newest = 0
    for root, _, files in os.walk(os.path.expanduser(path)):
        for f in files:
            st = os.stat(os.path.join(root, f))
            count, size, newest = count + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    return count, size, newest

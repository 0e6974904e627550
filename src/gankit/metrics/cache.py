"""Where evaluation caches live: ``$GANKIT_CACHE`` or ``~/.cache/gankit``."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def key(*items: object) -> str:
    """A short stable hash of JSON-able items (data set identity, extractor, preprocessing, n)."""
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]

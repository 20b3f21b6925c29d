"""Whether the Hugging Face hub can serve a model now, decided in a moment:
without network the hub client retries for about a minute before failing,
so commands ask here first and fail at once with advice."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def offline_reason(repo_id: str, filenames: tuple[str, ...] = ("config.json",)) -> str | None:
    """None when one of ``filenames`` of ``repo_id`` is in the local Hugging
    Face cache or the hub answers; otherwise why it cannot be fetched."""
    from huggingface_hub import constants, try_to_load_from_cache

    if any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in filenames):
        return None
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return "HF_HUB_OFFLINE is set and the model is not in the cache"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=5).close()
    except OSError as exc:
        return f"cannot reach {endpoint.hostname}: {exc}"
    return None

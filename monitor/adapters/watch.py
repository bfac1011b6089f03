"""Watching config files for changes (watchfiles; the only module that imports it)."""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

__all__ = ["watch_files"]

log = logging.getLogger(__name__)


def _folder_of(pattern: str) -> str:
    """The deepest existing folder above a file or glob."""
    folder = Path(pattern).absolute().parent
    while glob.has_magic(str(folder)) or not folder.is_dir():
        if folder.parent == folder:
            break
        folder = folder.parent
    return str(folder)


async def watch_files(
    patterns: Callable[[], list[str]], on_change: Callable[[], None], debounce_ms: int
) -> None:
    """Call `on_change` when a file matching one of `patterns()` (files or globs, asked
    again at each change, so a reload's new globs count) is written, made, moved or
    removed, once the changes have been quiet for `debounce_ms`. Editors that save by
    renaming are seen too: the folders are watched, not the files. Runs until cancelled."""
    folders = sorted({_folder_of(p) for p in patterns()})

    def relevant(_: watchfiles.Change, changed: str) -> bool:
        path = str(Path(changed).absolute())
        return any(fnmatch.fnmatchcase(path, str(Path(p).absolute())) for p in patterns())

    log.info("watching %s for config changes", ", ".join(folders))
    try:
        async for _ in watchfiles.awatch(
            *folders, watch_filter=relevant, debounce=debounce_ms, recursive=False
        ):
            log.info("config files changed: reloading")
            on_change()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a folder vanished, inotify ran out of watches...
        log.error("watching the config files stopped: %s", exc)

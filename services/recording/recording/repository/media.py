"""The media directory (RECORD_PATH): its layout, safe placement of new files and safe lookup of served ones."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

# URL prefix -> folder under the media root (the original's express.static mounts).
STATIC: dict[str, str] = {
    "/logo": "logo",
    "/videos": "uploads/videos",
    "/images": "uploads/images",
    "/thumbnails": "uploads/thumbnails",
    "/files": "uploads/files",
    "/record": "video-record",
}
INCOMING = "uploads/.incoming"  # temporary names of files being stored (never served: hidden and not mounted)


class MediaDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def ensure(self) -> None:
        for folder in [*STATIC.values(), INCOMING]:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def temp_path(self) -> Path:
        return self.root / INCOMING / f"{uuid.uuid4().hex}.part"

    def new_folder(self, kind: str) -> tuple[str, Path]:
        """A fresh numbered folder (epoch ms, as the original named them) under uploads/<kind>; never reused."""
        base = self.root / "uploads" / kind
        stamp = int(time.time() * 1000)
        while True:
            path = base / str(stamp)
            try:
                path.mkdir(parents=True)
                return str(stamp), path
            except FileExistsError:
                stamp += 1

    def resolve(self, prefix: str, relative: str) -> Path | None:
        """The file a static URL names, or None: no hidden segments, no escape from the prefix's folder."""
        folder = STATIC.get(prefix)
        if folder is None:
            return None
        parts = [p for p in relative.replace("\\", "/").split("/") if p]
        if not parts or any(p.startswith(".") or "\x00" in p for p in parts):
            return None
        base = (self.root / folder).resolve()
        target = base.joinpath(*parts).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return None
        return target


def place(temp: Path, final: Path) -> Path:
    """Give ``temp`` its final name without ever replacing an existing file (hard link, then the caller drops
    the temp name); on a clash the name gets an epoch-ms prefix."""
    final.parent.mkdir(parents=True, exist_ok=True)
    candidate = final
    for attempt in range(50):
        try:
            os.link(temp, candidate)
            return candidate
        except FileExistsError:
            candidate = final.with_name(f"{int(time.time() * 1000) + attempt}_{final.name}")
    raise FileExistsError(str(final))


def remove(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def remove_empty_dir(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.rmdir()

"""The media directory (RECORD_PATH): its layout, safe placement of new files and safe lookup of served ones,
uploads copied in and image thumbnails written."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

log = logging.getLogger("recording.uploads")

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
THUMBNAIL_SIZE = (320, 320)
Image.MAX_IMAGE_PIXELS = 80_000_000  # decompression bombs are refused


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
        try:
            target = base.joinpath(*parts).resolve()
            found = target.is_relative_to(base) and target.is_file()
        except OSError:  # a name the file system cannot hold (a segment over 255 bytes, a path too long): no file
            return None
        return target if found else None


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


def copy_to(stream: IO[bytes], target: Path) -> None:
    stream.seek(0)
    with target.open("xb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)


def image_info(stream: IO[bytes], mime: str, thumb_target: Path) -> tuple[int | None, int | None, bool]:
    """Width, height, thumbnail written; raises ValueError when the bytes are not a readable image."""
    if mime == "image/svg+xml":
        return None, None, False
    stream.seek(0)
    try:
        with Image.open(stream) as image:
            width, height = image.size
            image.load()
            thumb = image.copy()
            fmt = image.format or "PNG"
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(str(exc)) from exc
    finally:
        stream.seek(0)
    try:
        thumb.thumbnail(THUMBNAIL_SIZE)
        if fmt == "JPEG" and thumb.mode not in ("RGB", "L"):
            thumb = thumb.convert("RGB")
        with thumb_target.open("xb") as out:
            thumb.save(out, format=fmt)
        return width, height, True
    except Exception:  # a format Pillow reads but cannot write: no thumbnail
        log.warning("thumbnail failed", exc_info=True)
        remove(thumb_target)
        return width, height, False

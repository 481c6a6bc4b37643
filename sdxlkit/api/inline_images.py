"""Images sent inside tasks (data URIs, base64), written where ComfyUI's LoadImage reads them while their tasks are
queued: one file per distinct image (named by its content hash, so the same image sent twice is one file), held by
the tasks that use it and deleted when the last of them ends, with a cap on the bytes held at once."""

from __future__ import annotations

import hashlib
import io
import shutil
import threading
from pathlib import Path

from PIL import Image

from ..results import write_atomic
from .errors import ServerBusy

FOLDER = "sdxlkit_inline"  # inside ComfyUI's input folder


class InlineImages:
    def __init__(self, input_dir: Path, max_bytes: int):
        self.folder, self.max_bytes = Path(input_dir) / FOLDER, max_bytes
        self._owners: dict[str, set[str]] = {}  # file name -> owners holding it
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Remove what an earlier server process left (no task of this one can use it)."""
        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._owners.clear()
            self._sizes.clear()

    def hold(self, owner: str, image: Image.Image) -> str:
        """The input-folder-relative name of `image` stored as PNG, held for `owner` until release(owner)."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        data = buffer.getvalue()
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        with self._lock:
            if name not in self._owners:
                held = sum(self._sizes.values())
                if held + len(data) > self.max_bytes:
                    raise ServerBusy(f"the server holds {held // 2**20} MiB of images of queued tasks, its limit "
                                     f"(SDXLKIT_INLINE_IMAGES_MB); retry when some have finished")
                write_atomic(self.folder / name, data)
                self._owners[name], self._sizes[name] = set(), len(data)
            self._owners[name].add(owner)
        return f"{FOLDER}/{name}"

    def release(self, owner: str) -> None:
        with self._lock:
            for name in [n for n, owners in self._owners.items() if owner in owners]:
                self._owners[name].discard(owner)
                if not self._owners[name]:
                    del self._owners[name], self._sizes[name]
                    (self.folder / name).unlink(missing_ok=True)

    def held(self) -> int:
        with self._lock:
            return len(self._owners)

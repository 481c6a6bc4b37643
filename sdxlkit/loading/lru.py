"""A small least-recently-used cache of things made from files (parsed LoRAs, loaded ControlNets, upscalers)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from ..errors import ModelLoadError


def file_key(path: Path, what: str) -> tuple:
    """(resolved path, size, mtime): a file replaced under the same name is a new key."""
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise ModelLoadError(f"{Path(path).name}: cannot read the {what} ({exc.strerror})") from None
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


class LruCache:
    """Keeps at most `capacity` values; `made` counts the values made (cache misses)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._values: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.made = 0

    def get_or_make(self, key: tuple, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()  # outside the lock: loading is slow and may fail
        with self._lock:
            self.made += 1
            self._values[key] = value
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)
        return value

    def release(self) -> None:
        with self._lock:
            self._values.clear()


class FileModels(LruCache):
    """Models made by `load(path, device)`, one per file version and device (upscalers, face detectors)."""

    def __init__(self, what: str, load: Callable[[Path, Any], Any], capacity: int = 2):
        super().__init__(capacity)
        self.what = what
        self.load = load

    def get(self, path: Path, device) -> Any:
        return self.get_or_make(file_key(path, self.what) + (str(device),), lambda: self.load(path, device))

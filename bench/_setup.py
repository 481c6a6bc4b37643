"""What every generation bench starts with: the checkout on sys.path and the shared size/steps/repeats options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generation_parser(repeats: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    if repeats:
        parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    return parser

"""Regenerate workflows/<name>.json and <name>.api.json from each workflows/<name>.task.json twin.

    python tools/make_workflows.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdxlkit.graph.examples import write_examples  # noqa: E402

if __name__ == "__main__":
    for path in write_examples(ROOT / "workflows"):
        print(path.relative_to(ROOT))  # noqa: T201

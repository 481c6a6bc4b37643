"""Regenerate the examples from each example_tasks/<name>.task.json twin: the twin itself (images inlined as data
URIs), example_workflows/<title>.json with its .jpg thumbnail, and example_api/<name>.api.json.

    python tools/make_workflows.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdxlkit.graph.examples import write_examples  # noqa: E402

if __name__ == "__main__":
    for path in write_examples(ROOT):
        print(path.relative_to(ROOT))  # noqa: T201

"""The frontend extension's pure helpers, tested with Node's own test runner (skipped where Node is missing)."""

import shutil
import subprocess

import pytest

from conftest import ROOT


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_helpers_pass_node_test():
    result = subprocess.run(["node", "--test", str(ROOT / "tests" / "js")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 5" in result.stdout


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_extension_file_parses():
    result = subprocess.run(["node", "--check", str(ROOT / "js" / "sdxlkit.js")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

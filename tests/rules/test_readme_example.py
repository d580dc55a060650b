"""The rule in the README's section for rule authors loads and passes its own tests, as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_rule_passes_its_inline_tests(tmp_path):
    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml\nrules:\n") + len("```yaml\n")
    rule = tmp_path / "example.yaml"
    rule.write_text(text[start : text.index("```", start)], encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "rules", "test", str(rule)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"

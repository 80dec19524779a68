"""Service boundaries: services import only contracts and runtime, never each other or the gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """import-linter on a copy of the tree where `module` (a path under the root) starts with `line`:
    proves a contract can fail."""
    import shutil

    for name in ("contracts", "runtime", "services", "gateway", "integrations"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(f"{line}  # noqa\n" + target.read_text())
    lint = Path(sys.executable).parent / "lint-imports"
    return subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_the_linter_would_catch_a_service_importing_another(tmp_path):
    result = lint_with(tmp_path, "services/notifications/handlers.py", "import services.pipeline.service")
    assert result.returncode != 0 and "BROKEN" in result.stdout


def test_the_linter_would_catch_a_sync_worker_importing_a_service(tmp_path):
    result = lint_with(tmp_path, "integrations/aws_partner_central/mapping.py",
                       "import services.pipeline.ingestion.service")
    assert result.returncode != 0 and "Sync workers import contracts and runtime only BROKEN" in result.stdout


def test_the_linter_would_catch_the_gateway_importing_a_service(tmp_path):
    result = lint_with(tmp_path, "gateway/app.py", "from services.pipeline.handlers import definition")
    assert result.returncode != 0 and "The gateway never imports a service" in result.stdout
    assert "BROKEN" in result.stdout.split("The gateway never imports a service", 1)[1].split("\n\n")[0]

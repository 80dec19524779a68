"""A rolling restart's step for a process that may run beside its successor (runtime.supervisor,
`Child.replace`): the new process starts while the old one drains, and the step waits for the old one to
finish draining and exit by itself."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.supervisor import Child
from runtime.testing import eventually

# Marks itself started; told to stop (SIGTERM), marks that and drains until the test releases it, then exits 0.
DRAINING = """
import os, signal, sys, time
from pathlib import Path
here = Path(sys.argv[1])
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
(here / f"started-{os.getpid()}").touch()
while not stopping:
    time.sleep(0.02)
(here / f"stopping-{os.getpid()}").touch()
while not (here / "release").exists():
    time.sleep(0.02)
"""


async def test_the_new_process_starts_while_the_old_one_drains_and_the_old_one_exits_by_itself(tmp_path: Path):
    child = Child("drainer", ["-c", DRAINING, str(tmp_path)], dict(os.environ), overlaps=True)
    await child.start()
    old = child.proc
    assert old is not None
    await eventually(lambda: (tmp_path / f"started-{old.pid}").exists(), "the first process started")

    old_gone = await child.replace()
    new = child.proc
    assert new is not None and new.pid != old.pid
    await eventually(lambda: (tmp_path / f"started-{new.pid}").exists(), "the new process started")
    await eventually(lambda: (tmp_path / f"stopping-{old.pid}").exists(), "the old process told to stop")
    assert old.returncode is None, "the old process is still draining beside the new one"

    (tmp_path / "release").touch()
    await old_gone
    assert old.returncode == 0  # drained and exited by itself, not killed
    assert child.running() and child.proc is new
    await child.stop()
    assert new.returncode == 0

"""Guard against a Qt binding that corrupts reference counts when signals carry Python objects.

PySide6 6.12.0 under Python 3.11 decrements a shared object (None, True/False) on every
``Signal(object)`` emit; a long training run emits enough progress events to abort the app.
The check runs in a subprocess because the failure is a hard abort.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Source(QObject):
    value = Signal(object)
    pair = Signal(str, object)

app = QCoreApplication([])
source = Source()
source.value.connect(lambda v: None)
source.pair.connect(lambda k, v: None)
for _ in range(150_000):
    source.value.emit(None)
    source.value.emit(1)
    source.pair.emit("x", None)
print("ok")
"""


def test_many_object_signals_do_not_corrupt_reference_counts():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (
        "the installed PySide6 corrupts reference counts on Signal(object) emits "
        f"(exit {done.returncode}): {done.stderr[-400:]}")

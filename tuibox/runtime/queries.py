"""The read-only half of `Runtime`: get, list and runc's state JSON, from state.json and
kernel facts.

Engines call `state` several times per container (podman: create, start, and again around
every exec and stop), so these queries live apart from box.py and import only the state
root's reader: no spec model, init code, ctypes or stages (tests/unit/test_hot_imports.py
holds the `state` and `list` verbs to that). `box.Runtime` inherits them; the CLI's
`state` and `list` use this class alone.
"""

from __future__ import annotations

import builtins
import os

from tuibox.runtime import state as st
from tuibox.runtime.errors import CorruptRecord, TuiboxError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The runtime-spec version `state` reports.
OCI_VERSION = "1.0.2"


class Queries:
    """Reading boxes under one state root; safe from a threaded process (no fork)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        data_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = st.StateRoot(root)
        # Where images live (None: $TUIBOX_DATA, else /var/lib/tuibox); see `Runtime.images`.
        self.data_root = None if data_root is None else os.fspath(data_root)

    def get(self, name: str) -> st.BoxRecord:
        """The box's record with its status refreshed from kernel facts."""
        return self._refresh(self.root.read(name))

    def _refresh(self, record: st.BoxRecord) -> st.BoxRecord:
        d = self.root.box_dir(record.id)
        status = st.live_status(record, d)
        if status == "stopped":
            if record.exit_status is None:
                record.exit_status = st.read_exit_status(d)
            if not record.oom_killed and record.exit_status == 137:
                from tuibox.runtime.cgroups import oom_killed

                record.oom_killed = st.read_oom_killed(d) or oom_killed(record)
            record.pid = 0
        record.status = status
        return record

    def list(self) -> builtins.list[st.BoxRecord]:
        out = []
        for name in self.root.names():
            try:
                out.append(self.get(name))
            except CorruptRecord as e:
                # Shown, not hidden: `destroy --force` can still tear it down.
                out.append(st.BoxRecord(name, "unknown", "", "", extra={"problem": e.reason}))
            except TuiboxError:
                continue  # a box destroyed right now
        return out

    def state(self, name: str) -> dict[str, Any]:
        """runc's state JSON: its keys in its order (annotations only when there are some)."""
        r = self.get(name)
        out: dict[str, Any] = {
            "ociVersion": OCI_VERSION,
            "id": r.id,
            "pid": r.pid,
            "status": r.status,
            "bundle": r.bundle,
            "rootfs": r.rootfs,
            "created": r.created,
            "owner": "",
        }
        if r.annotations:
            out["annotations"] = r.annotations
        return out

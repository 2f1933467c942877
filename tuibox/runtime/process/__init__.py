"""What runs in forked children: the box's init (`init.py`, named steps), an `exec`'d process
(`exec.py`), the detached box's monitor (`monitor.py`) and console keeper (`keeper.py`), the
pty relay (`relay.py`) and the parent/child handshake (`sync.py`). Nothing is imported here."""

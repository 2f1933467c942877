"""A tiny conmon: drives an OCI runtime (tuibox or runc) the way engines do, as a subreaper.

Run as a script (its own process, so that PR_SET_CHILD_SUBREAPER never touches pytest):

    python oci_supervisor.py '{"rt": [...], "root": R, "log": L, "bundle": B, "id": ID,
                               "mode": "plain|console|exec|exec-tty|preserve"}'

It runs `RT --root R --log L --log-format json create --bundle B --pid-file P ID` with pipes
as fds 0-2 (or a console socket it listens on), looks at its own children once create has
returned, starts the box, reads the output, reaps the init (it is the init's reaper, not the
runtime) and prints one JSON object of what it saw.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

PR_SET_CHILD_SUBREAPER = 36


def console_socket(path: str, got: dict[str, Any]) -> threading.Thread:
    """A console socket as an engine has one: the first peer's message and fds go to `got`."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            got["msg"], got["fds"], _, _ = socket.recv_fds(conn, 1024, 4)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread  # its closure keeps the listening socket open


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read())


def reap(pid: int, timeout: float = 20.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    return None


def drain(fd: int, timeout: float = 10.0) -> bytes:
    """Everything readable from fd until EOF/EIO or the timeout."""
    os.set_blocking(fd, False)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        except OSError:  # EIO: the pty's last slave closed
            break
        if not chunk:
            break
        out += chunk
    return out


def main() -> None:
    conf: dict[str, Any] = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    rt = [*conf["rt"], "--root", conf["root"], "--log", conf["log"], "--log-format", "json"]
    mode = conf["mode"]
    name = conf["id"]
    work = conf["work"]
    pid_file = os.path.join(work, "init.pid")
    result: dict[str, Any] = {}
    if mode == "preserve":
        # runc's --preserve-fds counts from fd 3: put the write end there before anything
        # else takes it.
        extra_r, extra_w = os.pipe()
        extra_r, old_r = os.dup(extra_r), extra_r
        os.close(old_r)
        if extra_w != 3:
            os.dup2(extra_w, 3)
            os.close(extra_w)
    out_r, out_w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY)
    create = [*rt, "create", "--bundle", conf["bundle"], "--pid-file", pid_file]
    got: dict[str, Any] = {}
    pass_fds: tuple[int, ...] = ()
    if mode == "console":
        path = os.path.join(work, "console.sock")
        thread = console_socket(path, got)
        create += ["--console-socket", path]
    if mode == "preserve":
        pass_fds = (3,)
        create += ["--preserve-fds", "1"]
    proc = subprocess.run(
        [*create, name], stdin=null, stdout=out_w, stderr=out_w, pass_fds=pass_fds, check=False
    )
    if mode == "preserve":
        os.close(3)
    os.close(out_w)
    result["create_rc"] = proc.returncode
    if proc.returncode != 0:
        result["create_output"] = drain(out_r, 1).decode(errors="replace")
        print(json.dumps(result))
        return
    pid = read_int(pid_file)
    result["pid"] = pid
    # What is left of the runtime once create returned: only the box's init, our child now.
    result["children_after_create"] = children(os.getpid())
    state = subprocess.run([*rt, "state", name], capture_output=True, text=True, check=False)
    result["state_created"] = json.loads(state.stdout)
    if mode == "exec-tty":
        start = subprocess.run([*rt, "start", name], capture_output=True, check=False)
        result["start_rc"] = start.returncode
        process = os.path.join(work, "process.json")
        with open(process, "w") as f:
            json.dump(
                {
                    "terminal": True,
                    "args": ["sh", "-c", "tty; echo tty-$((6*7)); exit 7"],
                    "cwd": "/",
                    "env": ["PATH=/bin:/usr/bin", "TERM=xterm"],
                    "user": {"uid": 0, "gid": 0},
                },
                f,
            )
        path = os.path.join(work, "exec.sock")
        waiter = console_socket(path, got)
        exec_pid_file = os.path.join(work, "exec.pid")
        ex = subprocess.run(
            [
                *rt,
                "exec",
                "--console-socket",
                path,
                "--tty",
                "--detach",
                "--pid-file",
                exec_pid_file,
                "--process",
                process,
                name,
            ],
            stdin=null,
            capture_output=True,
            check=False,
        )
        result["exec_rc"] = ex.returncode
        result["exec_err"] = ex.stderr.decode()
        waiter.join(10)
        fds = got.get("fds") or []
        result["console_fds"] = len(fds)
        result["exec_output"] = drain(fds[0]).decode(errors="replace") if fds else ""
        result["exec_exit"] = reap(read_int(exec_pid_file)) if ex.returncode == 0 else None
        for fd in fds:
            os.close(fd)
        subprocess.run([*rt, "kill", name, "KILL"], check=False)
        result["exit"] = reap(pid)
    elif mode == "exec":
        start = subprocess.run([*rt, "start", name], capture_output=True, check=False)
        result["start_rc"] = start.returncode
        ps = subprocess.run(
            [*rt, "ps", "--format", "json", name], capture_output=True, text=True, check=False
        )
        result["ps"] = json.loads(ps.stdout)
        process = os.path.join(work, "process.json")
        with open(process, "w") as f:
            json.dump(
                {
                    "args": ["sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"],
                    "cwd": "/",
                    "env": ["PATH=/bin:/usr/bin"],
                    "user": {"uid": 0, "gid": 0},
                },
                f,
            )
        e_r, e_w = os.pipe()
        exec_pid_file = os.path.join(work, "exec.pid")
        ex = subprocess.run(
            [*rt, "exec", "--pid-file", exec_pid_file, "--process", process, "--detach", name],
            stdin=null,
            stdout=e_w,
            stderr=e_w,
            check=False,
        )
        os.close(e_w)
        result["exec_rc"] = ex.returncode
        exec_pid = read_int(exec_pid_file)
        result["exec_exit"] = reap(exec_pid)
        result["exec_output"] = drain(e_r).decode(errors="replace")
        subprocess.run([*rt, "kill", name, "KILL"], check=False)
        result["exit"] = reap(pid)
    else:
        start = subprocess.run([*rt, "start", name], capture_output=True, check=False)
        result["start_rc"] = start.returncode
        if mode == "console":
            thread.join(10)
            fds = got.get("fds") or []
            result["console_msg"] = got.get("msg", b"").decode()
            result["console_fds"] = len(fds)
            result["output"] = drain(fds[0]).decode(errors="replace") if fds else ""
            result["exit"] = reap(pid)
            for fd in fds:
                os.close(fd)
        else:
            result["exit"] = reap(pid)
            result["output"] = drain(out_r).decode(errors="replace")
        if mode == "preserve":
            result["fd3"] = drain(extra_r, 2).decode(errors="replace")
    state = subprocess.run([*rt, "state", name], capture_output=True, text=True, check=False)
    result["state_after"] = json.loads(state.stdout) if state.returncode == 0 else None
    delete = subprocess.run([*rt, "delete", name], capture_output=True, text=True, check=False)
    result["delete_rc"] = delete.returncode
    result["delete_err"] = delete.stderr
    print(json.dumps(result))


if __name__ == "__main__":
    main()

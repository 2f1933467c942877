"""Pull and push through a real registry: Debian's docker-registry on 127.0.0.1, private
storage in a temp dir, started once for the module and stopped by pid.

The round trip pushes busybox and a two-layer image derived from it (its top layer written
here: a file, a whiteout, an opaque directory, and a config with Env, WorkingDir, Labels and
ExposedPorts), removes them locally, pulls them back by tag and by digest, runs a box from
each, and checks that the base layer is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TB

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not (shutil.which("skopeo") and os.path.exists("/usr/bin/docker-registry")),
        reason="needs Debian's skopeo and docker-registry",
    ),
]

OCI = "application/vnd.oci.image"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _serving(base: Path, extra: str = "") -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1, storage under base; stopped by pid."""
    port = _free_port()
    (base / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        "log:\n  level: error\n" + extra
    )
    proc = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(base / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serving(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One that wants a user and password (htpasswd, bcrypt through libxcrypt)."""
    base = tmp_path_factory.mktemp("auth-registry")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt: gone in 3.13
        import crypt

        hashed = crypt.crypt("secret", crypt.mksalt(crypt.METHOD_BLOWFISH))
    (base / "htpasswd").write_text(f"user:{hashed}\n")
    extra = f"auth:\n  htpasswd:\n    realm: test\n    path: {base / 'htpasswd'}\n"
    with _serving(base, extra) as host:
        yield host


def _skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _member(name: str, data: bytes | None = None, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 1_600_000_000
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = len(data)
    return info


def _top_layer() -> bytes:
    files: list[tuple[str, bytes | None]] = [
        ("etc/motd", b"derived\n"),
        ("etc/.wh.resolv.conf", b""),  # a whiteout of a base file
        ("linuxrc", None),  # a directory replaces a symlink of the base
        ("linuxrc/inside", b"x\n"),
        ("usr", None),
        ("usr/.wh..wh..opq", b""),  # /usr shows only what this layer has
        ("usr/only", b"only\n"),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            tar.addfile(_member(name, data), io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def add_layer(layout: Path, layer: bytes, config_update: dict[str, Any]) -> None:
    """Append an uncompressed layer to the single image of an OCI layout, with its config."""
    blobs = layout / "blobs" / "sha256"

    def read(digest: str) -> Any:
        return json.loads((blobs / digest.split(":")[1]).read_bytes())

    def blob(data: bytes, media: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    index = json.loads((layout / "index.json").read_text())
    manifest = read(index["manifests"][0]["digest"])
    config = read(manifest["config"]["digest"])
    config["rootfs"]["diff_ids"].append(f"sha256:{hashlib.sha256(layer).hexdigest()}")
    config.pop("history", None)
    config["config"] = {**config.get("config", {}), **config_update}
    manifest["mediaType"] = f"{OCI}.manifest.v1+json"
    manifest["config"] = blob(json.dumps(config).encode(), f"{OCI}.config.v1+json")
    manifest["layers"].append(blob(layer, f"{OCI}.layer.v1.tar"))
    desc = blob(json.dumps(manifest).encode(), f"{OCI}.manifest.v1+json")
    desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    index["manifests"] = [desc]
    (layout / "index.json").write_text(json.dumps(index))


def _inspect(tb: TB, name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(tb("image", "inspect", name).stdout)
    return out


def _store_entries(data: Path) -> list[str]:
    """Everything in the data root but boxes' dirs: what a failed pull must not leave."""
    if not data.exists():
        return []
    out = []
    for dirpath, dirs, files in os.walk(data):
        rel = os.path.relpath(dirpath, data)
        out += [os.path.join(rel, n) for n in dirs + files if n != ".lock"]
    return sorted(out)


def test_push_pull_round_trip_shares_the_base_layer(tb: TB, registry: str, tmp_path: Path) -> None:
    tls = "--tls-verify=false"
    tb("run", "--image", "busybox", "warm", "true")  # builds the busybox image
    assert tb("push", tls, "busybox", f"{registry}/base:1").stdout == f"{registry}/base:1\n"

    # The derived image: the pushed base, plus a layer of our own, pushed with skopeo alone.
    layout = tmp_path / "derived"
    _skopeo("copy", "--src-tls-verify=false", f"docker://{registry}/base:1", f"oci:{layout}:latest")
    add_layer(
        layout,
        _top_layer(),
        {
            "Env": ["PATH=/bin:/sbin", "FROM_IMAGE=yes"],
            "WorkingDir": "/etc",
            "Labels": {"org.example.role": "test"},
            "ExposedPorts": {"8080/tcp": {}},
            "Cmd": ["/bin/sh", "-c", "echo default"],
        },
    )
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{registry}/app:2")
    digest = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{registry}/app:2"))[
        "Digest"
    ]

    tb("image", "rm", "busybox")
    assert tb("image", "ls", "-q").stdout == ""

    assert tb("pull", tls, f"{registry}/base:1").stdout == "base-1\n"
    assert tb("pull", tls, f"{registry}/app:2").stdout == "app-2\n"
    by_digest = tb("pull", tls, "--name", "app-d", f"{registry}/app@{digest}")
    assert by_digest.stdout == "app-d\n"

    base, app, app_d = (_inspect(tb, n) for n in ("base-1", "app-2", "app-d"))
    assert len(base["layers"]) == 1 and len(app["layers"]) == 2
    assert app["layers"] == app_d["layers"] and app["layers"][0] == base["layers"][0]
    assert app_d["digest"] == digest and app_d["reference"] == f"{registry}/app@{digest}"
    assert app["ports"] == ["8080/tcp"] and app["labels"] == {"org.example.role": "test"}
    assert app["config"]["config"]["WorkingDir"] == "/etc"

    # The base layer is stored once: one dir per digest, the same inode for every image.
    layers = tb.data_root / "layers"
    stored = sorted(p.name for p in layers.iterdir() if not p.name.startswith("."))
    assert stored == sorted(d.split(":")[1] for d in app["layers"])
    bb = layers / base["layers"][0].split(":")[1] / "diff" / "bin" / "busybox"
    ino = bb.stat().st_ino
    ls = {i["name"]: i for i in json.loads(tb("image", "ls", "--format", "json").stdout)}
    assert ls["base-1"]["shared_size"] > 1_000_000 and ls["base-1"]["unique_size"] == 0
    # app-2 shares its base with base-1 and its top with app-d: nothing of its own.
    assert ls["app-2"]["shared_size"] > ls["base-1"]["shared_size"]
    assert ls["app-2"]["unique_size"] == 0

    # A box from each: the base runs; the derived one shows its layer over the base. Both
    # read the very same busybox file (overlayfs shows a lower file's own inode).
    stat = ["/bin/busybox", "stat", "-c", "%i", "/bin/busybox"]
    assert tb("run", "--image", "base-1", "b1", *stat).stdout == f"{ino}\n"
    script = (
        "cat /etc/motd; ls /etc/resolv.conf 2>/dev/null || echo whited-out; "
        "cat /linuxrc/inside; ls /usr; echo $FROM_IMAGE; pwd; stat -c %i /bin/busybox"
    )
    want = f"derived\nwhited-out\nx\nonly\nyes\n/etc\n{ino}\n"
    for image in ("app-2", "app-d"):
        out = tb("run", "--image", image, f"r-{image}", "/bin/sh", "-c", script).stdout
        assert out == want, (image, out)
    assert tb("run", "--image", "app-2", "dflt").stdout == "default\n"
    # Labels become the box's annotations, as docker gives a container its image's labels.
    tb("run", "-d", "--image", "app-2", "lab", "sleep", "30")
    assert tb.state("lab")["annotations"] == {"org.example.role": "test"}
    tb("destroy", "--force", "lab")
    # A user-namespace box mounts the layers one by one (idmapped lowers).
    out = tb("run", "--userns", "auto", "--image", "app-2", "u", "/bin/sh", "-c", script)
    assert out.stdout == want

    # A pulled image pushed again: its trees become tars again (whiteouts, the opaque dir),
    # reproducibly: the base comes back with the digest it had, so it is still stored once.
    tb("push", tls, "app-2", f"{registry}/again:1")
    tb("pull", tls, f"{registry}/again:1")
    again = _inspect(tb, "again-1")
    assert again["layers"][0] == base["layers"][0] and len(again["layers"]) == 2
    out = tb("run", "--image", "again-1", "r-again", "/bin/sh", "-c", script).stdout
    assert out == want
    assert again["config"]["config"]["Labels"] == {"org.example.role": "test"}
    tb("image", "rm", "again-1")

    # A tag shares the layers; rm removes only what no other image uses.
    tb("image", "tag", "app-2", "app-copy")
    for name in ("app-2", "app-d"):
        tb("image", "rm", name)
    assert len([p for p in layers.iterdir() if not p.name.startswith(".")]) == 2
    tb("image", "rm", "app-copy")
    assert [p.name for p in layers.iterdir() if not p.name.startswith(".")] == [
        base["layers"][0].split(":")[1]
    ]
    assert bb.stat().st_ino == ino  # the base was never re-extracted
    tb("image", "rm", "base-1")
    assert [p for p in layers.iterdir() if not p.name.startswith(".")] == []
    assert [p for p in (tb.data_root / "l").iterdir()] == []


def test_unreachable_registry_fails_within_the_timeout_and_leaves_nothing(
    tb: TB, tmp_path: Path
) -> None:
    before = _store_entries(tb.data_root)
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    line = tb.fails("pull", "--tls-verify=false", "--timeout", "10", f"127.0.0.1:{port}/x")
    assert time.monotonic() - t0 < 10
    assert line.startswith(f"tuibox: error: registry 127.0.0.1:{port} is unreachable: "), line
    # A server that accepts and never answers: our timeout, one line.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        line = tb.fails("pull", "--tls-verify=false", "--timeout", "2", f"{host}/x:1")
        assert time.monotonic() - t0 < 8
        assert line == f"tuibox: error: registry {host} did not answer within 2 s"
        # SIGTERM while it waits: skopeo is stopped with it, one line, nothing left.
        proc = subprocess.Popen(
            tb.argv("pull", "--tls-verify=false", f"{host}/y:1"),
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 130 and err == "tuibox: error: interrupted\n", err
        left = subprocess.run(["pgrep", "-f", f"{host}/y:1"], capture_output=True, text=True)
        assert left.stdout == "", left.stdout
    assert _store_entries(tb.data_root) == before


def test_refusals_are_one_line_and_leave_nothing(tb: TB, registry: str, auth_registry: str) -> None:
    before = _store_entries(tb.data_root)
    line = tb.fails("pull", "--tls-verify=false", f"{auth_registry}/x:1")
    assert line == (
        f"tuibox: error: registry {auth_registry} refused access to {auth_registry}/x:1 "
        "(log in, or check the name): unauthorized: authentication required"
    )
    line = tb.fails("pull", "--tls-verify=false", f"{registry}/missing:1")
    assert line == f"tuibox: error: image {registry}/missing:1 was not found in registry {registry}"
    line = tb.fails("pull", f"{registry}/missing:1")  # https to a plain-http registry
    assert "--tls-verify=false" in line
    for bad in ("Alpine", "x@sha256:12", "a//b", f"{registry}/x:-t", "docker://x"):
        assert tb.fails("pull", bad).startswith("tuibox: error: invalid image reference")
    assert "must be true or false" in tb.fails("pull", "--tls-verify=maybe", "x")
    assert "does not exist" in tb.fails("push", "--tls-verify=false", "nothing", f"{registry}/n")
    assert _store_entries(tb.data_root) == before


def test_gc_finds_layers_no_image_uses(tb: TB, registry: str) -> None:
    tb("run", "--image", "busybox", "warm", "true")
    tb("push", "--tls-verify=false", "busybox", f"{registry}/gc:1")
    tb("pull", "--tls-verify=false", f"{registry}/gc:1")
    assert "image-layer" not in tb("gc").stdout
    # An image record lost (a crash, a hand-made removal): its layer is now debris.
    shutil.rmtree(tb.data_root / "images" / "gc-1")
    (hexpart,) = [p.name for p in (tb.data_root / "layers").iterdir()]
    # While some image's record is unreadable its layers are unknown: none is called unused.
    broken = tb.data_root / "images" / "broken"
    broken.mkdir()
    (broken / "image.json").write_text("{not json")
    assert "image-layer" not in tb("gc").stdout
    shutil.rmtree(broken)
    listed = tb("gc").stdout
    assert f"would: image-layer {tb.data_root}/layers/{hexpart} (sha256:{hexpart})" in listed
    # A push killed half-way leaves its layout; nobody holds it any more.
    (tb.data_root / ".push-killed").mkdir()
    assert f"would: push {tb.data_root}/.push-killed" in tb("gc").stdout
    tb("gc", "--yes")
    assert not (tb.data_root / ".push-killed").exists()
    assert list((tb.data_root / "layers").iterdir()) == []
    assert list((tb.data_root / "l").iterdir()) == []
    assert tb("run", "--image", "busybox", "again", "true").returncode == 0


def test_a_retried_pull_reuses_the_blobs_that_arrived(tb: TB, registry: str) -> None:
    """What an interrupted pull keeps (its download layout, with the blobs that arrived
    whole) is reused by the next pull of the same reference, then removed."""
    from tuibox.runtime.images.reference import parse_reference
    from tuibox.runtime.images.registry import _pull_dir
    from tuibox.runtime.images.store import ImageStore

    tb("run", "--image", "busybox", "warm", "true")
    ref = f"{registry}/resume:1"
    tb("push", "--tls-verify=false", "busybox", ref)
    work = Path(_pull_dir(ImageStore(str(tb.data_root)), parse_reference(ref)))
    layout = work / "layout"
    work.mkdir(parents=True)
    _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:latest")
    index = json.loads((layout / "index.json").read_text())
    sha = layout / "blobs" / "sha256"
    manifest = json.loads((sha / index["manifests"][0]["digest"].split(":")[1]).read_text())
    (layout / "index.json").unlink()  # interrupted before the manifest was written
    # The layers (skopeo writes the small config again, whatever it finds).
    blobs = {
        d["digest"].split(":")[1]: (sha / d["digest"].split(":")[1]).stat().st_ino
        for d in manifest["layers"]
    }
    listed = tb("gc").stdout
    assert f"would: pull {work}" in listed
    seen: dict[str, int] = {}
    # Watch the layout while the pull runs: skopeo must leave the blobs it finds in place.
    proc = subprocess.Popen(
        tb.argv("pull", "--tls-verify=false", ref), stdout=subprocess.PIPE, text=True
    )
    while proc.poll() is None:
        for name in blobs:
            try:
                seen[name] = (layout / "blobs" / "sha256" / name).stat().st_ino
            except FileNotFoundError:
                pass
    assert proc.wait() == 0 and proc.stdout is not None and proc.stdout.read() == "resume-1\n"
    assert seen == blobs
    assert not work.exists() and not work.parent.exists()
    assert tb("run", "--image", "resume-1", "r", "/bin/busybox", "true").returncode == 0


def test_the_tui_service_pulls_with_progress_and_lists_what_the_cli_lists(
    tb: TB, registry: str
) -> None:
    import asyncio

    from tuibox.service import InProcessBackend, PullProgress, ServiceError

    tb("run", "--image", "busybox", "warm", "true")
    tb("push", "--tls-verify=false", "busybox", f"{registry}/svc:1")
    backend = InProcessBackend(str(tb.root), str(tb.data_root))
    reports: list[PullProgress] = []
    name = asyncio.run(backend.pull(f"{registry}/svc:1", False, reports.append))
    assert name == "svc-1"
    phases = [r.phase for r in reports]
    assert phases[0] == "download" and phases[-1] == "extract"
    assert reports[-1].done == reports[-1].total > 1_000_000
    rows = asyncio.run(backend.images())
    cli = json.loads(tb("image", "ls", "--format", "json").stdout)
    assert [(r.name, r.size, r.layers, r.shared_size, r.unique_size) for r in rows] == [
        (d["name"], d["size"], d["layers"], d["shared_size"], d["unique_size"]) for d in cli
    ]
    with pytest.raises(ServiceError) as e:
        asyncio.run(backend.pull(f"{registry}/svc:404", False))
    assert e.value.message == f"image {registry}/svc:404 was not found in registry {registry}"
    assert e.value.kind == "image"
    with pytest.raises(ServiceError) as e:
        asyncio.run(backend.remove_image("nothing"))
    assert "does not exist" in e.value.message


def test_a_second_pull_of_the_same_reference_waits_its_turn(tb: TB, registry: str) -> None:
    import fcntl

    from tuibox.runtime.images.reference import parse_reference
    from tuibox.runtime.images.registry import _pull_dir
    from tuibox.runtime.images.store import ImageStore

    tb("run", "--image", "busybox", "warm", "true")
    ref = f"{registry}/twice:1"
    tb("push", "--tls-verify=false", "busybox", ref)
    work = Path(_pull_dir(ImageStore(str(tb.data_root)), parse_reference(ref)))
    work.mkdir(parents=True)
    (work / "theirs").write_text("a blob in progress\n")
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as the pull in progress holds it
        line = tb.fails("pull", "--tls-verify=false", ref)
        assert line == f"tuibox: error: {ref} is being pulled by another process"
        assert (work / "theirs").exists()  # that pull's download is left alone
        assert f"pull {work}" not in tb("gc").stdout
    finally:
        os.close(fd)
    assert tb("pull", "--tls-verify=false", ref).stdout == "twice-1\n"
    assert not work.exists()


def test_credentials_come_from_an_auth_file(tb: TB, auth_registry: str, tmp_path: Path) -> None:
    import base64

    tb("run", "--image", "busybox", "warm", "true")
    ref = f"{auth_registry}/private:1"
    line = tb.fails("push", "--tls-verify=false", "busybox", ref)
    assert "refused access" in line and "authentication required" in line
    auth = tmp_path / "auth.json"
    token = base64.b64encode(b"user:secret").decode()
    auth.write_text(json.dumps({"auths": {auth_registry: {"auth": token}}}))
    tls = "--tls-verify=false"
    assert tb("push", tls, "--authfile", str(auth), "busybox", ref).stdout == f"{ref}\n"
    assert tb("pull", tls, "--authfile", str(auth), ref).stdout == "private-1\n"
    line = tb.fails("pull", tls, "--authfile", str(tmp_path / "none.json"), "--name", "o", ref)
    assert line == f"tuibox: error: --authfile {tmp_path / 'none.json'}: no such file"

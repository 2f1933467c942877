"""Docker-style image references and the one-line errors skopeo's failures become."""

from __future__ import annotations

import pytest

from tuibox.runtime.errors import ImageError
from tuibox.runtime.images.reference import parse_reference
from tuibox.runtime.images.registry import _classify

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "local"),
    [
        ("alpine", "docker.io/library/alpine:latest", "alpine"),
        ("alpine:3.19", "docker.io/library/alpine:3.19", "alpine-3.19"),
        ("docker.io/library/alpine:3.19", "docker.io/library/alpine:3.19", "alpine-3.19"),
        ("index.docker.io/user/app", "docker.io/user/app:latest", "app"),
        ("user/app:v1", "docker.io/user/app:v1", "app-v1"),
        ("host:5000/x/y:tag", "host:5000/x/y:tag", "y-tag"),
        ("localhost/x", "localhost/x:latest", "x"),
        ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest", "busybox"),
        (f"registry:5000/x@sha256:{HEX}", f"registry:5000/x@sha256:{HEX}", "x-aaaaaaaaaaaa"),
        (f"x:1@sha256:{HEX}", f"docker.io/library/x@sha256:{HEX}", "x-aaaaaaaaaaaa"),
        ("docker.io/a.b-c__d/e--f:T_1.x-y", "docker.io/a.b-c__d/e--f:T_1.x-y", "e--f-t_1.x-y"),
    ],
)
def test_references_normalise_as_docker_does(text: str, full: str, local: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.transport() == f"docker://{full}"
    assert ref.local_name() == local


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Alpine",
        "alpine:",
        "alpine:-x",
        "a//b",
        "a/b/",
        "x@sha256:abc",
        f"x@md5:{HEX}",
        "docker://alpine",
        "al pine",
        "host:99999/x",
        "a..b",
        "a___b",
        "x:" + "t" * 129,
        "-a",
        "a.b_c/x",
    ],
)
def test_bad_references_are_one_line_errors(text: str) -> None:
    with pytest.raises(ImageError) as e:
        parse_reference(text)
    assert str(e.value).startswith("invalid image reference")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("stderr", "reason", "words"),
    [
        (
            'time="x" level=fatal msg="Error reading manifest latest in 127.0.0.1:5/x: '
            'manifest unknown: manifest unknown"',
            "missing",
            "was not found in registry",
        ),
        (
            'time="x" level=fatal msg="initializing source docker://q/x:latest: reading '
            'manifest latest in q/x: unauthorized: authentication required"',
            "auth",
            "refused access",
        ),
        (
            'msg="pinging container registry 127.0.0.1:1: Get \\"http://127.0.0.1:1/v2/\\": '
            'dial tcp 127.0.0.1:1: connect: connection refused"',
            "unreachable",
            "is unreachable: dial tcp 127.0.0.1:1: connect: connection refused",
        ),
        (
            'msg="pinging container registry h: Get \\"https://h/v2/\\": http: server gave '
            'HTTP response to HTTPS client"',
            "tls",
            "--tls-verify=false",
        ),
        ("something else broke", "other", "skopeo failed"),
    ],
)
def test_skopeo_errors_map_to_one_line(stderr: str, reason: str, words: str) -> None:
    err = _classify(parse_reference("127.0.0.1:5/x"), stderr, False)
    assert err.reason == reason
    assert words in str(err)
    assert "\n" not in str(err) and '\\"' not in str(err)


def test_a_timeout_says_so() -> None:
    err = _classify(parse_reference("h:1/x"), "", True, 3)
    assert str(err) == "registry h:1 did not answer within 3 s"
    assert err.reason == "unreachable"

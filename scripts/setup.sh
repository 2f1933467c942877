#!/bin/sh
# Idempotent set-up for a Debian 12 machine, as root: system packages, then the venv.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="python3 python3-venv busybox-static runc crun iproute2 nftables iptables tmux hyperfine libseccomp2 gcc libc6-dev keyutils skopeo docker-registry asciinema chromium"
# The engines the tests drive tuibox with (tests/integration/engines/): no recommends
# (rootful, CNI: netavark, slirp4netns, fuse-overlayfs, uidmap are not used). podman 4.3 picks
# the CNI backend when netavark is absent; its bridge case needs the CNI plugins.
ENGINES="podman docker.io containerd catatonit containernetworking-plugins"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
engines=""
for p in $ENGINES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || engines="$engines $p"
done
if [ -n "$missing$engines" ]; then
  echo "setup: installing$missing$engines"
  apt-get update -qq
  # The engines (podman, containerd, docker.io) are for the tests, which start their own
  # with private storage: a policy-rc.d that says no keeps apt from starting the host's.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  if [ -n "$missing" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  if [ -n "$engines" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $engines >/dev/null
  fi
  if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# Debian's own python3: its start-up is measured in bench/ and it is what a user has.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
# constraints.txt pins the tested versions: a fresh machine gets exactly those, and a venv
# is brought back to them whenever the pins (or pyproject.toml's ranges) change.
if ! .venv/bin/python -c 'import tuibox, textual, pyroute2, pytest' 2>/dev/null \
   || [ ! -e .venv/.installed ] \
   || [ pyproject.toml -nt .venv/.installed ] || [ constraints.txt -nt .venv/.installed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
  touch .venv/.installed
fi

# The `tuibox` command: pip's generated script imports `re` and runs `site` (~15 ms together);
# ours starts Python with -I -S and puts the checkout first on the path. tuibox/sitepath.py
# brings the venv's packages back for the verbs that need them.
repo=$(pwd)
cat > .venv/bin/tuibox <<LAUNCHER
#!$repo/.venv/bin/python -IS
import os, sys
sys.path.insert(0, "$repo")
from tuibox.cli import main
code = main()
# Interpreter finalization (module teardown) costs milliseconds a verb for nothing.
try:
    sys.stdout.flush()
    sys.stderr.flush()
except OSError:
    pass
os._exit(code)
LAUNCHER
chmod +x .venv/bin/tuibox

# `tuibox` (and `sudo tuibox`, whose secure_path has /usr/local/bin) on PATH, as the README
# says; an existing file that is not our link is left alone.
bindir=${TUIBOX_BINDIR:-/usr/local/bin}
link="$bindir/tuibox"
if [ -L "$link" ] || [ ! -e "$link" ]; then
  mkdir -p "$bindir"
  ln -sfn "$repo/.venv/bin/tuibox" "$link"
else
  echo "setup: $link exists and is not a link; leaving it (use $repo/.venv/bin/tuibox)" >&2
fi

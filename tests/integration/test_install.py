# SPDX-License-Identifier: MIT
"""What the README promises of installing: scripts/install-deps installs
only what building and running need unless asked for the test peers,
leaves no packaged DNS daemon enabled at boot, and `make install` puts
candor on a PATH (PREFIX, DESTDIR)."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

DEPS = os.path.join(ROOT, "scripts", "install-deps")


def _list(*args):
    out = subprocess.run([DEPS, "--list"] + list(args), capture_output=True,
                         text=True, timeout=10, check=True)
    return set(out.stdout.split())


def test_install_deps_lists_build_only_by_default():
    base = _list()
    full = _list("--test")
    assert {"libknot-dev", "libuv1-dev", "build-essential"} <= base
    # test and benchmark peers only with --test
    peers = {"knot", "unbound", "python3-pytest", "libcmocka-dev",
             "dnsperf", "bind9-dnsutils"}
    assert not peers & base
    assert peers <= full and base <= full


@pytest.mark.skipif(shutil.which("systemctl") is None,
                    reason="no systemctl on this machine")
def test_no_packaged_dns_daemon_is_enabled_at_boot():
    """After scripts/install-deps --test (as CI runs it), none of the
    peers' daemons starts at boot."""
    units = ["knot.service", "unbound.service", "dnsdist.service",
             "kresd.target", "kres-cache-gc.service", "dnsmasq.service",
             "prometheus.service"]
    enabled = []
    for u in units:
        st = subprocess.run(["systemctl", "is-enabled", u],
                            capture_output=True, text=True, timeout=10)
        if st.stdout.strip() == "enabled":
            enabled.append(u)
    assert enabled == [], "enabled at boot: %s" % enabled


def test_make_install_puts_candor_on_the_path(tmp_path):
    variant = os.environ.get("CANDOR_VARIANT", "release")
    dest = str(tmp_path / "root")
    out = subprocess.run(["make", "-C", ROOT, "-s", "install", "V=" + variant,
                          "DESTDIR=" + dest, "PREFIX=/opt/cnd"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    binary = os.path.join(dest, "opt", "cnd", "bin", "candor")
    assert os.access(binary, os.X_OK)
    env = dict(os.environ, PATH=os.path.dirname(binary) + ":" + os.environ["PATH"])
    v = subprocess.run(["candor", "-version"], capture_output=True, text=True,
                       timeout=10, env=env)
    assert v.returncode == 0 and v.stdout.startswith("candor-")
    p = subprocess.run(["candor", "ctl", "-h"], capture_output=True, text=True,
                       timeout=10, env=env)
    assert p.returncode == 0 and "Usage: candor ctl" in p.stdout
    out = subprocess.run(["make", "-C", ROOT, "-s", "uninstall",
                          "V=" + variant, "DESTDIR=" + dest, "PREFIX=/opt/cnd"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not os.path.exists(binary)

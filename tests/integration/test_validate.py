# SPDX-License-Identifier: MIT
"""`candor -validate` runs every check the start runs short of binding
sockets: over one table of broken Corefiles, -validate and a real start
give the same verdict (exit 1) and the same message."""
import os
import subprocess

import pytest

from conftest import CANDOR, free_addr, free_port

BROKEN = {
    "health_port_out_of_range": "health localhost:99999",
    "health_port_70000": "health :70000",
    "prometheus_port_not_a_number": "prometheus 127.0.0.1:notaport",
    "ready_host_not_an_ip": "ready example.com:8181",
    "prometheus_missing_bracket": "prometheus [::1:9153",
    "forward_not_an_address": "forward . notanaddress",
    "unknown_directive": "frobnicate",
    "whoami_arguments": "whoami extra",
    "plugin_not_in_candor": "kubernetes cluster.local",
    "cache_negative": "cache -1",
    "two_errors": "errors\n    errors",
}

# Whole Corefiles: @BLOCK@ is a block on the test's address and port.
BROKEN_FILES = {
    "unclosed_outer_block":
        ".:@PORT@ {\n    bind @ADDR@\n    forward . 127.0.0.1:9 {\n"
        "        max_fails 3\n    }\n",
    "stray_closing_brace":
        ".:@PORT@ {\n    bind @ADDR@\n    whoami\n}\n}\n",
    "zone_twice":
        ".:@PORT@ {\n    bind @ADDR@\n    whoami\n}\n"
        ".:@PORT@ {\n    bind @ADDR@\n    whoami\n}\n",
}


def _cases():
    for name, line in BROKEN.items():
        yield name, ".:@PORT@ {\n    bind @ADDR@\n    %s\n}\n" % line
    yield from BROKEN_FILES.items()


def _run(args, cwd):
    return subprocess.run([CANDOR] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=10)


@pytest.mark.parametrize("name,text", list(_cases()),
                         ids=[c[0] for c in _cases()])
def test_validate_and_start_agree(tmp_path, name, text):
    addr = free_addr()
    text = text.replace("@ADDR@", addr).replace("@PORT@", str(free_port(addr)))
    conf = os.path.join(str(tmp_path), "Corefile")
    with open(conf, "w") as f:
        f.write(text)
    v = _run(["-conf", conf, "-validate"], str(tmp_path))
    try:
        s = _run(["-conf", conf, "-ctl", "off", "-quiet"], str(tmp_path))
    except subprocess.TimeoutExpired:
        pytest.fail("%s: the start served it (-validate: exit %d %s)"
                    % (name, v.returncode, v.stderr.strip()))
    assert v.returncode == 1, (name, v.stdout, v.stderr)
    assert s.returncode == 1, (name, s.stdout, s.stderr)
    assert v.stderr.strip() != ""
    # the same message, which names the file and line
    assert v.stderr.strip().splitlines()[-1] == s.stderr.strip().splitlines()[-1]
    assert "Corefile:" in v.stderr.strip().splitlines()[-1], v.stderr


def test_validate_message_names_the_fix(tmp_path):
    conf = os.path.join(str(tmp_path), "Corefile")
    with open(conf, "w") as f:
        f.write(".:1053 {\n    health localhost:99999\n}\n")
    v = _run(["-conf", conf, "-validate"], str(tmp_path))
    assert v.returncode == 1
    assert v.stderr.strip() == (
        "plugin/health: %s:2 - Error during parsing: listen tcp: address "
        "99999: invalid port (a port is 0-65535)" % conf)

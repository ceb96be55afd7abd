"""The plugin ABI: a plugin includes core/plugin.h, dns/ and util/ only.

scripts/check-includes is part of "make test"; these tests prove it
passes on the tree and fails, naming the file and line, on a plugin that
reaches into the core.
"""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check-includes")


def run(root):
    return subprocess.run([SCRIPT, root], capture_output=True, text=True, timeout=30)


def test_tree_passes():
    p = run(ROOT)
    assert p.returncode == 0, p.stderr


def plugin_tree(tmp_path, files):
    d = tmp_path / "src" / "plugins" / "demo"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return str(tmp_path)


def test_core_internal_header_fails(tmp_path):
    root = plugin_tree(tmp_path, {
        "demo.c": '#include <stdio.h>\n#include "core/plugin.h"\n'
                  '#include "core/conf.h"\n#include "dns/msg.h"\n',
    })
    p = run(root)
    assert p.returncode == 1
    assert "src/plugins/demo/demo.c:3:" in p.stderr
    assert "core/conf.h" in p.stderr
    assert "core/plugin.h" in p.stderr  # says what is allowed


def test_other_internal_headers_fail(tmp_path):
    for inc in ("core/server.h", "core/internal.h", "core/ctl.h",
                "plugins/forward/forward.h", "tools/doctor.h"):
        shutil.rmtree(tmp_path / "src", ignore_errors=True)
        root = plugin_tree(tmp_path, {"demo.h": '#include "%s"\n' % inc})
        p = run(root)
        assert p.returncode == 1, inc
        assert inc in p.stderr


def test_allowed_headers_and_tests_pass(tmp_path):
    root = plugin_tree(tmp_path, {
        "demo.c": '#include <uv.h>\n#include "core/plugin.h"\n'
                  '#include "dns/ede.h"\n#include "util/log.h"\n'
                  '#include "plugins/demo/demo.h"\n',
        "demo_test.c": '#include "core/conf.h"\n',  # unit tests may
    })
    p = run(root)
    assert p.returncode == 0, p.stderr

"""Every console script explains itself: ``--help`` and ``--version`` exit 0 with the right
text; an unknown argument is a usage error (2) with one line saying so, never a traceback."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from rancher_tunnel.version import version

SCRIPTS = ["rancher-server", "cluster-agent", "node-agent", "kube-api-auth", "kubesim",
           "rancher"]
TIMEOUT_S = 30


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which(argv[0])
    assert exe is not None, f"{argv[0]} is not installed (pip install -e .)"
    return subprocess.run([exe, *argv[1:]], check=False, capture_output=True, text=True,
                          timeout=TIMEOUT_S,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_version(script: str) -> None:
    helped = run(script, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "usage" in helped.stdout.lower() and "Traceback" not in helped.stderr
    shown = run(script, "--version")
    assert shown.returncode == 0, shown.stderr
    assert version() in shown.stdout + shown.stderr


@pytest.mark.parametrize("script", ["rancher-server", "cluster-agent", "node-agent",
                                    "kube-api-auth", "kubesim"])
def test_unknown_argument_is_a_usage_error(script: str) -> None:
    out = run(script, "--no-such-flag")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "--no-such-flag" in out.stderr


def test_agent_help_lists_every_variable() -> None:
    text = run("cluster-agent", "--help").stdout
    for var in ("CATTLE_SERVER", "CATTLE_TOKEN", "CATTLE_CA_CHECKSUM", "CATTLE_ALLOWED_TARGETS"):
        assert var in text
    assert "CATTLE_NODE_NAME" in run("node-agent", "--help").stdout


def test_agent_configuration_mistakes_are_one_message_exit_2() -> None:
    out = run("cluster-agent")
    assert out.returncode == 2
    assert "CATTLE_SERVER" in out.stderr and "CATTLE_TOKEN" in out.stderr
    assert "Traceback" not in out.stderr

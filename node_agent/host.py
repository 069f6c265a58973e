"""The node's host, read from ``/proc`` and ``/sys`` under ``root`` (``CATTLE_HOST_ROOT``, default
``/``; a DaemonSet mounts the host's filesystem there to see its runtime sockets): facts that
rarely change (kernel, OS, CPUs, memory, boot time, container runtime sockets present) and stats
(CPU busy percent between two samples, memory available, root disk, load, uptime).

Pure reading, no I/O beyond small files and one ``statvfs``; a file that is missing or unreadable
leaves its figures out rather than failing the report."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

# Where container runtimes listen (containerd, CRI-O, Docker, cri-dockerd), relative to the root.
RUNTIME_SOCKETS = (
    "run/containerd/containerd.sock",
    "run/crio/crio.sock",
    "var/run/docker.sock",
    "run/cri-dockerd.sock",
    "run/k3s/containerd/containerd.sock",
)
KIB = 1024
MAX_FILE_BYTES = 64 * 1024  # none of the files read here is larger
CPU_IDLE_FIELDS = (3, 4)  # idle, iowait in /proc/stat's "cpu" line (after the label)


def _read(path: Path) -> str:
    with path.open("rb") as f:
        return f.read(MAX_FILE_BYTES).decode(errors="replace")


def _cpu_times(root: Path) -> tuple[int, int] | None:
    """(busy, total) jiffies since boot from ``/proc/stat``."""
    for line in _read(root / "proc" / "stat").splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            total = sum(values[:8])  # user..steal; guest time is already in user
            idle = sum(values[i] for i in CPU_IDLE_FIELDS if i < len(values))
            return total - idle, total
    return None


def _meminfo(root: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in _read(root / "proc" / "meminfo").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = float(parts[0]) * (KIB if parts[1:] == ["kB"] else 1)
    return out


def _os_name(root: Path) -> str:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        with contextlib.suppress(OSError):
            for line in _read(root / rel).splitlines():
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    return ""


@dataclass
class HostSampler:
    """Reads the host; keeps the last CPU sample so that each :meth:`stats` gives the busy
    percent since the previous one."""

    root: Path = Path("/")
    _last_cpu: tuple[int, int] | None = field(default=None, repr=False)

    def facts(self) -> dict[str, str]:
        out: dict[str, str] = {"architecture": platform.machine()}
        proc = self.root / "proc"
        with contextlib.suppress(OSError):
            out["kernel"] = _read(proc / "sys" / "kernel" / "osrelease").strip()
        with contextlib.suppress(OSError):
            out["hostname"] = _read(proc / "sys" / "kernel" / "hostname").strip()
        with contextlib.suppress(OSError, ValueError):
            online = _read(self.root / "sys" / "devices" / "system" / "cpu" / "online").strip()
            out["cpus"] = str(_count_cpus(online))
        if "cpus" not in out:
            out["cpus"] = str(os.cpu_count() or 0)
        with contextlib.suppress(OSError):
            mem = _meminfo(self.root)
            if "MemTotal" in mem:
                out["memory_bytes"] = str(int(mem["MemTotal"]))
        with contextlib.suppress(OSError, ValueError):
            uptime = float(_read(proc / "uptime").split()[0])
            out["boot_time"] = str(int(time.time() - uptime))
        if name := _os_name(self.root):
            out["os_image"] = name
        return out

    def runtime_sockets(self) -> list[str]:
        return ["/" + rel for rel in RUNTIME_SOCKETS if (self.root / rel).is_socket()]

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {}
        proc = self.root / "proc"
        with contextlib.suppress(OSError, ValueError):
            now = _cpu_times(self.root)
            last, self._last_cpu = self._last_cpu, now
            if now is not None and last is not None and now[1] > last[1]:
                out["cpu_busy_percent"] = 100.0 * (now[0] - last[0]) / (now[1] - last[1])
        with contextlib.suppress(OSError):
            mem = _meminfo(self.root)
            for src, dst in (("MemTotal", "memory_total_bytes"),
                             ("MemAvailable", "memory_available_bytes")):
                if src in mem:
                    out[dst] = mem[src]
        with contextlib.suppress(OSError, ValueError):
            load = _read(proc / "loadavg").split()
            out["load_1m"], out["load_5m"], out["load_15m"] = (float(x) for x in load[:3])
        with contextlib.suppress(OSError, ValueError):
            out["uptime_s"] = float(_read(proc / "uptime").split()[0])
        with contextlib.suppress(OSError):
            st = os.statvfs(self.root)
            out["disk_total_bytes"] = float(st.f_blocks * st.f_frsize)
            out["disk_available_bytes"] = float(st.f_bavail * st.f_frsize)
        return out


def _count_cpus(online: str) -> int:
    """``0-3,5`` -> 5."""
    n = 0
    for part in online.split(","):
        lo, _, hi = part.partition("-")
        n += (int(hi) - int(lo) + 1) if hi else 1
    return n

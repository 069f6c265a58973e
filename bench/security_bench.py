"""Issue 11's benchmark in one JSON line: runs the three hardening benchmarks (each measures its
own baseline in the same run) and merges their figures:

- ``hostile_rss_growth_mib``: server RSS growth with 10 flooding, non-reading agents
  (``bench/hostile_agents_bench.py``; target <= 20);
- ``revoke_stream_cut_p99_s``: a watch through the proxy closed after its token is revoked
  (``bench/revoke_stream_bench.py``; target <= 10);
- ``slowloris_login_ms``: a login's latency while 1,000 slow-header connections are held
  (``bench/slowloris_bench.py``; target <= 500).

``--quick`` passes ``--quick`` to each (about 90 s in all)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("hostile_agents_bench", "revoke_stream_bench", "slowloris_bench")
PART_TIMEOUT_S = 900
KEYS = {
    "hostile_agents_bench": ("hostile_rss_growth_mib", "baseline_rss_growth_mib"),
    "revoke_stream_bench": ("revoke_stream_cut_p99_s", "revoke_new_request_p99_s"),
    "slowloris_bench": ("slowloris_login_ms", "baseline_login_ms", "slow_connections_held"),
}


def run_part(name: str, quick: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])]
    out = subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, text=True,
                         timeout=PART_TIMEOUT_S)
    last = out.stdout.strip().splitlines()[-1]
    doc: dict[str, Any] = json.loads(last)
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    merged: dict[str, Any] = {"bench": "security", "quick": args.quick}
    for name in PARTS:
        doc = run_part(name, args.quick)
        merged.update({k: doc.get(k) for k in KEYS[name]})
    merged["targets"] = {"hostile_rss_growth_mib": 20, "revoke_stream_cut_p99_s": 10,
                         "slowloris_login_ms": 500}
    print(json.dumps(merged), flush=True)


if __name__ == "__main__":
    main()

"""Many simulated cluster agents in one process, each running the real agent connection loop
(``cluster_agent.connection.AgentConnection``): registration, keepalive, backoff and reconnect.
Each keeps the agent credential the server issues at its first registration in memory and presents
it on every reconnect, as a real agent does from its file or Secret (the registration token alone
is refused once a credential was issued).

    python -m bench.sim_agents --server URL --ca CA.pem --tokens tokens.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl

from cluster_agent.config import AgentConfig
from cluster_agent.connection import AgentConnection
from cluster_agent.credential import AgentCredential, MemoryCredentialStore
from rancher_tunnel import logs
from rancher_tunnel.stream import IncomingStream


async def refuse_all(incoming: IncomingStream) -> None:
    await incoming.refuse("simulated agent: no targets")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--tokens", required=True)
    args = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.tokens) as f:
        tokens = json.load(f)
    ctx = ssl.create_default_context(cafile=args.ca)
    conns = []
    for i, token in enumerate(tokens):
        cfg = AgentConfig(server=args.server, token=token)
        conns.append(
            AgentConnection(
                cfg, {"role": "cluster", "cluster": {}}, refuse_all, ctx, name=f"sim-{i}",
                credential=AgentCredential(MemoryCredentialStore()),
            )
        )
    tasks = [asyncio.create_task(c.run(), name=f"sim-{i}") for i, c in enumerate(conns)]
    print(json.dumps({"ready": True, "agents": len(conns)}), flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    logs.configure("sim-agents")
    import uvloop

    uvloop.install()
    asyncio.run(main())

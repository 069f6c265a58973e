"""The remotecommand channel protocol over websocket (``channel.k8s.io`` v1 to v5), free of I/O.

Every binary message is one channel byte followed by data: 0 stdin, 1 stdout, 2 stderr,
3 error (a JSON ``metav1.Status`` from v4 on, plain text before), 4 terminal resize
(``{"Width":W,"Height":H}``). v5 adds a close signal: the message ``[255, channel]`` closes
that channel (kubectl sends it for stdin at EOF)."""

from __future__ import annotations

import json
from dataclasses import dataclass

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
PROTOCOLS = (V5, V4, V3, V2, V1)  # preference order when a client offers several


class ProtocolError(Exception):
    """The peer sent a message this protocol does not allow."""


@dataclass(frozen=True)
class Data:
    channel: int
    data: bytes


@dataclass(frozen=True)
class Close:
    channel: int


def encode(channel: int, data: bytes) -> bytes:
    if not 0 <= channel <= 255:
        raise ValueError(f"channel out of range: {channel}")
    return bytes([channel]) + data


def decode(message: bytes, protocol: str) -> Data | Close | None:
    """One client message; None for an empty message (ignored, as kube's wsstream does)."""
    if not message:
        return None
    if message[0] == CLOSE and protocol == V5:
        if len(message) != 2:
            raise ProtocolError(
                "Single channel byte should follow stream close signal. "
                f"Got {len(message) - 1} bytes"
            )
        return Close(message[1])
    return Data(message[0], message[1:])


def parse_resize(data: bytes) -> tuple[int, int]:
    """``{"Width":80,"Height":24}`` -> (80, 24)."""
    try:
        size = json.loads(data)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError("invalid resize message") from exc


def _status(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def success(protocol: str) -> bytes | None:
    """What the error channel carries when the command succeeded (nothing before v4)."""
    if protocol in (V5, V4):
        return _status({"metadata": {}, "status": "Success"})
    return None


def exit_code(protocol: str, command: list[str], code: int) -> bytes:
    message = (
        f"command terminated with non-zero exit code: error executing command "
        f"[{' '.join(command)}], exit code {code}"
    )
    if protocol not in (V5, V4):
        return message.encode()
    return _status(
        {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    )


def internal_error(protocol: str, message: str) -> bytes:
    if protocol not in (V5, V4):
        return message.encode()
    return _status(
        {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: {message}",
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }
    )

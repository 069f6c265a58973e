"""Shared tunnel package: a sans-I/O protocol core and an asyncio layer over one websocket.

Protocol core (no asyncio / aiohttp / websockets imports):
  ``constants``  every limit and timeout, with units; ``Limits`` bundles the tunable ones
  ``errors``     LocalProtocolError / RemoteProtocolError (h11 style), DialRefused, SessionClosed
  ``frames``     10-byte struct header + payload, length-prefixed; ``FrameParser``
  ``windows``    credit windows: per-stream minimum + a shared per-session budget
  ``protocol``   ``Connection(role)``: receive_data / events / data_to_send, stream table as a
                 transition table, ping RTT, SYNC of live stream ids, GOAWAY
  ``events``     what ``Connection.events()`` yields
  ``messages``   typed msgpack messages (``@register`` more)

asyncio layer:
  ``session``    ``Session(ws, role, name=..., on_stream=..., on_message=..., limits=...)``:
                 run(), close(), open_stream(), open_connection(), create_connection() (TLS end
                 to end inside the stream), send_message(), rtt_s, closed, close_reason, stats
  ``stream``     ``TunnelStream`` (byte pipe or ``attach(protocol)``), ``IncomingStream``
  ``transport``  ``TunnelTransport``: one stream as an ``asyncio.Transport``
  ``splice``     ``serve_tcp(incoming, host, port)``: the agent's TCP splice (hot path)
  ``connector``  ``TunnelConnector``: an aiohttp connector whose connections are tunnel streams
  ``wsadapter``  aiohttp websockets and plain stream pairs behind one small interface; on an
                 aiohttp websocket the session reads with ``wsreader`` (push mode)
  ``wsreader``   our websocket frame reader, fed straight from the (TLS) transport: payloads
                 land in buffers of their own, unmasked in place, no queue and no loop hop
  ``malloc``     ``tune_malloc()``: glibc settings that keep bulk buffers off fresh pages
  ``backoff``    ``backoff()`` (random first delay, exponential, capped, full jitter) and
                 ``is_retryable(exc)``
"""

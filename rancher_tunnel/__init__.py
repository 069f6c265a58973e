"""Shared tunnel package: a sans-I/O protocol core and an asyncio layer over one websocket."""

"""The spectators' side: pages, JSON API, WebSockets, the per-process hub and socket writer."""

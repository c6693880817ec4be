"""A small client for the Mailpit-compatible API (docs/api.md) and courrier's long poll.

Kept to what a test suite needs — list, search, read, wait, delete — so a test reads as what it checks rather than
as HTTP plumbing. Field names are Mailpit's (``ID``, ``Subject``, ``From``, ``To`` …), so code written against
Mailpit's API works on the dicts returned here unchanged."""

from __future__ import annotations

from typing import Any

import httpx


class MessageTimeout(AssertionError):
    """No message matched within the timeout (an AssertionError, so pytest reports it as a failed expectation)."""


class MailpitClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        r.raise_for_status()
        return r.json()

    def messages(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` message summaries, newest first (``GET /api/v1/messages``)."""
        return self._json("GET", "/api/v1/messages", params={"limit": limit})["messages"]

    def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        """Summaries matching a Mailpit search (``to:a@x.test subject:"Welcome"``), newest first."""
        return self._json("GET", "/api/v1/search", params={"query": query, "limit": limit})["messages"]

    def message(self, id: str) -> dict[str, Any]:
        """One message in full (headers, ``Text``, ``HTML``, attachments); marks it read, as Mailpit does."""
        return self._json("GET", f"/api/v1/message/{id}")

    def raw(self, id: str) -> bytes:
        """The message exactly as received (``GET /api/v1/message/{ID}/raw``)."""
        r = self.http.get(f"/api/v1/message/{id}/raw")
        r.raise_for_status()
        return r.content

    def wait_for(self, query: str = "", timeout: float = 10.0) -> dict[str, Any]:
        """The newest message matching ``query`` (any message when empty), waiting up to ``timeout`` seconds for it
        on the server's long poll (``GET /api/courrier/wait``) instead of polling; MessageTimeout when none came."""
        r = self.http.get("/api/courrier/wait", params={"query": query, "timeout": timeout},
                          timeout=timeout + 10)
        if r.status_code == 408:
            raise MessageTimeout(f"no message matching {query!r} within {timeout:g}s")
        r.raise_for_status()
        return r.json()

    def delete_all(self) -> None:
        """Deletes every message (``DELETE /api/v1/messages`` with no IDs; answers a plain ``ok``, as Mailpit)."""
        self.http.request("DELETE", "/api/v1/messages").raise_for_status()

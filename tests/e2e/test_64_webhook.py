"""Scenario 64: `[http] webhook_url` receives a JSON POST (the message summary) for each captured message."""

from __future__ import annotations

import json
import smtplib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def test_webhook_posts_summary_of_new_message(server_factory):
    posts: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        srv = server_factory(listeners=("smtp", "http"), capture=True, sections={"http": {"webhook_url": url}}).start()
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
            c.sendmail("a@sender.test", ["bob@example.test"], b"Subject: hooked\r\n\r\nbody\r\n")
        deadline = time.monotonic() + 10
        while not posts:
            assert time.monotonic() < deadline, srv.log()
            time.sleep(0.05)
        ctype, data = posts[0]
        assert ctype == "application/json"
        assert data["Subject"] == "hooked" and data["To"] == [] and data["Bcc"][0]["Address"] == "bob@example.test"
        assert {"ID", "MessageID", "Read", "From", "Created", "Size", "Snippet"} <= set(data)
    finally:
        httpd.shutdown()
        httpd.server_close()

"""Real loopback receivers for notification tests: an SMTP server (aiosmtpd) and an HTTP webhook sink.

Both listen on 127.0.0.1 on a free port, keep what they receive in memory, and are stopped by the test
(context managers). :func:`airflow_connections` gives the ``AIRFLOW_CONN_*`` variables that point the
pipeline's ``turkey_smtp`` / ``turkey_webhook`` connections at them.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scripts.procs import free_port  # the one free-port helper


class SmtpSink:
    """aiosmtpd on loopback; ``messages`` holds (envelope, parsed email.message.EmailMessage, raw bytes)."""

    def __init__(self):
        self.messages: list[tuple[dict, email.message.EmailMessage, bytes]] = []
        self.port = free_port()
        self._controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler API
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(({"from": envelope.mail_from, "to": list(envelope.rcpt_tos)}, msg, raw))
        return "250 Message accepted for delivery"

    def __enter__(self):
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc):
        self._controller.stop()

    @staticmethod
    def body(msg) -> str:
        part = msg.get_body(preferencelist=("html", "plain"))
        return part.get_content() if part is not None else ""


class WebhookSink:
    """HTTP server on loopback recording every POST: ``posts`` holds (path, headers, parsed JSON body, raw)."""

    def __init__(self):
        self.posts: list[tuple[str, dict, object, bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                sink.posts.append((self.path, dict(self.headers), body, raw))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/turkey"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def events(self, event: str) -> list[dict]:
        return [b for _, _, b, _ in self.posts if isinstance(b, dict) and b.get("event") == event]

    def wait_for(self, event: str, timeout: float, alive=lambda: True) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            got = self.events(event)
            if got:
                return got[-1]
            time.sleep(0.5)
        got = self.events(event)
        if got:
            return got[-1]
        raise AssertionError(f"no {event!r} webhook within {timeout:.0f}s; got {[b for _, _, b, _ in self.posts]}")


def airflow_connections(smtp: SmtpSink, webhook: WebhookSink, to: str = "ml-ops@example.com") -> dict:
    """``AIRFLOW_CONN_TURKEY_SMTP`` / ``AIRFLOW_CONN_TURKEY_WEBHOOK`` for the two sinks (no TLS, no auth)."""
    return {
        "AIRFLOW_CONN_TURKEY_SMTP": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"from_email": "turkey-pipeline@example.com", "to": to, "disable_tls": True,
                      "disable_ssl": True, "timeout": 10, "retry_limit": 1},
        }),
        "AIRFLOW_CONN_TURKEY_WEBHOOK": json.dumps({"conn_type": "http", "host": webhook.url}),
    }

"""Capture mode: the test server for developers' applications (MockMock, Mailpit, MailDev's job).

- its SMTP role (every recipient accepted, any AUTH, failures chosen by address) is ``courrier.roles.capture``.
- ``envelope.py`` the envelope kept *inside* each message file (``X-Courrier-Envelope:``), so a re-index loses nothing.
- ``api.py``      the protocols the web layer, the role and app.py use (CaptureBackend, CaptureQueries); the
                  PostgreSQL store of a cluster (``cluster/capture_store.py``) keeps them too.
- ``store.py``    CaptureStore — the one door to captured mail: Maildir files + SQLite index + events + retention.
- ``index.py``    the SQLite index (migration 0030_capture.sql) with FTS5 full-text search.
- ``parse.py``    MIME → summary fields, decoded text, parts (attachments, inline) with IMAP-style part ids.
- ``search.py``   Mailpit's search syntax compiled to SQL.
- ``events.py``   an in-process event hub (Mailpit's WebSocket events) for the web layer.
"""

"""The inspector: web UI, Mailpit-compatible JSON API, live events — served by uvicorn in the mail server's loop.

``server.start_http(cfg, make_context)`` is the one entry point (called by ``App.start_http``, the context built by
``App.web_context``); ``context.WebContext`` names everything the web layer uses from the rest of courrier — the
web layer never imports ``courrier.app``; ``api/`` has one module per resource.
"""

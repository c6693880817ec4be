"""The inspector: web UI, Mailpit-compatible JSON API, live events — served by uvicorn in the mail server's loop.

``server.start_http(app)`` is the one entry point (called by ``App.start_http``); ``context.WebContext`` names
everything the web layer uses from the rest of courrier; ``api/`` has one module per resource.
"""

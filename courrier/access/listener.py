"""The stream listener moved to the neutral network module (courrier/net/listener.py), beside the connection limits,
so that SMTP and the access protocols import it from one layer-0 place; this name stays for existing importers."""

from courrier.net.listener import BUSY, Handler, StreamListener

__all__ = ["BUSY", "Handler", "StreamListener"]

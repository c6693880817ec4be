"""Inbound filtering for the MX role: a small filter interface (``api``), its chain (``chain``), and two filters —
SpamAssassin's spamd (``spamd``) and DNS blocklists (``dnsbl``). Free of server imports (it sits beside
``courrier.mailauth``): the MX role asks, the filters answer; a milter client for rspamd would be a third filter."""

"""The neutral mail core shared by every part of the program: the one envelope (``envelope``: Envelope, Recipient,
Hop), envelope paths (``path``, RFC 5321), trace fields (``trace``), the accepted message (``message``), header fields
(``headers``) and address lists (``addresses``).

A leaf package: it imports nothing from the servers, so the SMTP engine, delivery, the queue, capture, IMAP, the web
and mailauth can all use it, and all see the same envelope, fields and addresses.
"""

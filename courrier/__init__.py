"""courrier — a complete, small, readable mail system.

The packages follow the path of an e-mail: ``smtp`` receives (MX and submission roles, capture mode), ``queue`` keeps
what must go out, ``delivery`` hands it on (local Maildir, remote MX, bounces), ``mailbox`` stores it, ``access``
serves it over POP3 and IMAP, ``web`` shows it, ``client`` is the sending side, ``mailauth`` judges forgery.
"""

__version__ = "0.1.0"

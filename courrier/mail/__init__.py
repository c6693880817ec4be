"""Message syntax shared by every part of the program: header fields (``headers``) and address lists (``addresses``).

A leaf package: it imports nothing from the servers, so submission, capture, IMAP, the web and mailauth can all use
it, and all see the same fields and the same addresses.
"""

"""Mailbox access protocols: POP3 (pop3/) and IMAP4rev1 (imap/) over the Maildir store (courrier/mailbox)."""

"""Network plumbing shared by every listener (SMTP, IMAP, POP3, ManageSieve, HTTP), free of protocol details."""

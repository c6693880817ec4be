"""The SMTP roles: the policies the one SMTP engine (``courrier.smtp``) runs with — MX (``mx``), submission
(``submission``) and capture mode (``capture``). aiosmtpd's protocol/handler split: the engine owns RFC 5321, a role
owns the decisions and reaches delivery, the queue, accounts and the mailbox store; the engine imports none of them.
"""

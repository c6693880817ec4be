"""Every reply the delivery side makes up itself, by name, beside the server's in :mod:`courrier.smtp.replies`.

A peer's own replies are carried as they came (:func:`courrier.delivery.remote.split_reply`); these are the ones for
what no peer said: DNS verdicts, connection trouble, a peer lacking an extension we need, the local route, and the
queue's own decisions (expiry, loops). Their text is what the delivery log and the bounce's Diagnostic-Code show, so
it is written here once; ``{name}`` fields are filled with :meth:`Reply.filled`.
"""

from __future__ import annotations

from courrier.mail.reply import Reply

# ---- the destination (RFC 5321 §5.1, RFC 7505) -----------------------------------------------------------
NULL_MX = Reply(556, "5.1.10", "{domain} accepts no mail (null MX, RFC 7505)")
NO_SUCH_DOMAIN = Reply(550, "5.1.2", "domain {domain} does not exist (NXDOMAIN)")
NO_MX_ADDRESS = Reply(550, "5.4.4", "no address for any mail exchanger of {domain}")
DNS_TEMPFAIL = Reply(451, "4.4.3", "DNS lookup for {domain} failed: {notes}")
NO_MX_TO_TRY = Reply(451, "4.4.4", "no mail exchanger to try for {domain}")
ALL_MX_FAILED = Reply(451, "4.4.1", "all mail exchangers failed; last: {last}")  # some said 4xx: try again later
LOOPS_BACK = Reply(554, "5.4.6", "mail for {host} loops back to myself")  # the peer greets with our name

# ---- the connection ---------------------------------------------------------------------------------------
CONNECT_FAILED = Reply(451, "4.4.1", "connect to {where}: {reason}")
TIMEOUT = Reply(451, "4.4.2", "timeout talking to {where}")
CONNECTION_LOST = Reply(451, "4.4.2", "connection to {where} lost: {error}")
STALE_CONNECTION = Reply(451, "4.4.2", "cached connection closed: {error}")
UNEXPECTED_REPLY = Reply(451, "4.4.0", "unexpected reply {code}")
# our smarthost credentials are wrong: a configuration error, not the sender's fault → retry later
SMARTHOST_AUTH_FAILED = Reply(451, "4.7.8", "smarthost AUTH failed: {reply}")
SMARTHOST_AUTH_IMPOSSIBLE = Reply(451, "4.7.0", "smarthost AUTH impossible: {error}")

# ---- outbound TLS policy (RFC 8461 MTA-STS, RFC 7672 DANE) ------------------------------------------------
# All temporary: a policy that keeps mail from every MX leaves it queued until max_lifetime, in case the receiving
# side fixes its certificate or DNS (RFC 8461 §5, RFC 7672 §2.2); Postfix uses the same 4.7.x codes.
STS_MX_NOT_LISTED = Reply(451, "4.7.5", "MX host {host} is not listed in the MTA-STS policy of {domain} "
                                        "(mode enforce, RFC 8461 §4.1)")
TLS_NOT_OFFERED = Reply(451, "4.7.4", "{host} does not offer STARTTLS, required by the {policy} policy")
TLS_REQUIRED_FAILED = Reply(451, "4.7.5", "TLS with {where}, required by the {policy} policy, failed: {reason}")
STS_CERT_INVALID = Reply(451, "4.7.5", "certificate of {host} not valid for the MTA-STS policy of {domain}: "
                                       "{reason} (RFC 8461 §4.2)")
DANE_MISMATCH = Reply(451, "4.7.5", "DANE: {reason} for {host} (RFC 7672 §3)")
DANE_LOOKUP_FAILED = Reply(451, "4.4.3", "DANE: TLSA lookup {name} failed on a DNSSEC-signed host: {error} "
                                         "(RFC 7672 §2.1.1)")

# ---- what the peer lacks (RFC 6531 §3.2, RFC 6152 §3) -----------------------------------------------------
NEEDS_SMTPUTF8 = Reply(553, "5.6.7", "the recipient's server does not support SMTPUTF8, needed for these addresses "
                                     "(RFC 6531 §3.2)")
NEEDS_8BITMIME = Reply(554, "5.6.3", "the recipient's server does not support 8BITMIME and the message cannot be "
                                     "converted to 7 bits")

# ---- the local route --------------------------------------------------------------------------------------
DELIVERED_TO_MAILBOX = Reply(250, "2.0.0", "delivered to mailbox")
BAD_RECIPIENT = Reply(550, "5.1.3", "bad recipient address: {error}")
LOCAL_FAILED = Reply(451, "4.3.0", "local delivery failed: {error}")
MAILBOX_FULL = Reply(552, "5.2.2", "mailbox {account} is full (quota {limit} octets)")  # RFC 3463 §3.3

# ---- the queue's own verdicts -----------------------------------------------------------------------------
# RFC 3463 4.4.7 "delivery time expired" has a transient class yet is final: said here, not left to the code (the
# 554 is what the delivery log and the Diagnostic-Code have always shown)
EXPIRED = Reply(554, "4.4.7", "message expired after {age} in the queue", permanent=True)
LOOP = Reply(554, "5.4.6", "too many Received: headers (more than {max_hops}): mail loop")  # RFC 5321 §6.3
NO_OUTCOME = Reply(451, "4.3.0", "no outcome from transport")  # a transport that forgot a recipient: retry

"""Authentication shared by every protocol: SASL decoding (sasl), the failed-login limiter (limiter), the door a
login goes through (gate: limiter slot, password check off the loop, logging) and the web client's address behind
trusted reverse proxies (proxies).

A leaf package: it imports config, log and (for the password check) accounts — nothing from smtp/, access/ or
web/, which import it. ManageSieve will use it the same way.
"""

from courrier.auth.gate import Attempt, AuthGate, Limited, check_password
from courrier.auth.limiter import AuthLimiter, account_key, client_key
from courrier.auth.proxies import TrustedProxies
from courrier.auth.sasl import AuthzDenied, Cancelled, Credentials, Malformed, SASLError

__all__ = [
    "Attempt", "AuthGate", "AuthLimiter", "AuthzDenied", "Cancelled", "Credentials", "Limited", "Malformed",
    "SASLError", "TrustedProxies", "account_key", "check_password", "client_key",
]

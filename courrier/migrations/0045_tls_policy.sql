-- Outbound TLS policy (RFC 8461 MTA-STS, RFC 7672 DANE): the policy each delivery attempt ran under, and the
-- MTA-STS policies fetched, kept across restarts until their max_age passes or their TXT id changes (RFC 8461 §5.1).
ALTER TABLE delivery_log ADD COLUMN tls_policy TEXT;   -- dane, mta-sts-enforce, mta-sts-testing, opportunistic
CREATE TABLE IF NOT EXISTS mta_sts_policy (
    domain  TEXT PRIMARY KEY,
    id      TEXT NOT NULL,    -- the _mta-sts TXT record's id the policy was fetched under
    policy  TEXT NOT NULL,    -- the policy file as served (parsed again when read)
    fetched REAL NOT NULL,
    expires REAL NOT NULL     -- fetched + max_age
);

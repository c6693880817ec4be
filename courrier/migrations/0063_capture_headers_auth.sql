-- Capture search beyond Mailpit (issue 14): `header:Name:value` and `auth:fail`.
-- headers: the message's header fields as a JSON array of [lower-cased name, RFC 2047-decoded unfolded value],
--          filled at indexing; NULL for rows indexed before this migration, which the store's periodic scan fills
--          from their files (CaptureStore.scan → backfill_headers).
-- auth:    the SPF/DKIM/DMARC outcome as search terms (" verdict:forged spf:fail dkim:pass dmarc:fail "), a cache of
--          the inspector's on-demand check (web/verdicts.py); NULL = not checked yet. A rebuilt index checks again.
ALTER TABLE capture_messages ADD COLUMN headers TEXT;
ALTER TABLE capture_messages ADD COLUMN auth TEXT;

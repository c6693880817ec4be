"""Sieve (RFC 5228): scripts compiled with sievelib's parser (script), the interpreter (interp) over a lazily parsed
message (message), the per-account script store with the vacation memory (store), and the messages Sieve itself
sends (compose). Delivery runs it through ``courrier.delivery.sieve``; ManageSieve serves the store."""

"""ManageSieve (RFC 5804): the account's Sieve scripts over the network (commands, protocol)."""

"""The outbound queue: a durable spool of framed records (spool), its state and delivery log in SQLite (store),
the retry schedule (schedule), local/remote routing (router) and the scheduler that drives them (runner)."""

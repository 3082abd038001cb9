"""The mail outbox: a mail is a row written in the transaction of the act it reports, delivered by a
worker, each in its own try, retried with backoff; a failed mail never holds up the others."""

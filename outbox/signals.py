"""Delivery outcomes for the layers above (the outbox imports none of them): `mail_sent` once a mail
left, `mail_failed` once it is given up. Receivers run in the transaction that records the outcome."""

from django.dispatch import Signal

mail_sent = Signal()  # kwargs: mail
mail_failed = Signal()  # kwargs: mail

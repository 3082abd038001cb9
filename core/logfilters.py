"""Logs a plant's IT reads: one line per refused request, and no line per timer-driven poll.

- `OneLineRefusals` (on django.request): a 400, 403 or 404 is an answer, not a crash — its record keeps
  its one line ("Forbidden (Permission denied): /rfcs/…") without the exception's traceback.
- `QuietPolls` (on django.server, the development server's request log): a page element that refreshes
  itself on a timer marks its address with `poll=1`; its successful requests are not logged at INFO.
"""

from __future__ import annotations

import logging

REFUSALS = {400, 403, 404, 405}


class OneLineRefusals(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) in REFUSALS:
            record.exc_info = None
            record.exc_text = None
        return True


class QuietPolls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        line = str(args[0]) if args else ""
        status = str(args[1]) if len(args) > 1 else ""
        return not ("poll=1" in line and status[:1] in ("2", "3"))

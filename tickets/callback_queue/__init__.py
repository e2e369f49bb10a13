"""The call-back queue: callers not put through who asked to be called back, and the call-back.

`models` holds the requests; `queue` asks (a caller, in order of asking) and starts (an
engineer, from the ticket: the outbox rings the engineer first through Twilio's Calls API);
`calls` follows the call itself: the engineer's leg claimed once, its ticket call, its end.
Not to be confused with `tickets.callbacks`, the office line's voicemails.
"""

from tickets.callback_queue.models import QueuedCallBack
from tickets.callback_queue.queue import (
    CALL_BACK,
    AlreadyCalling,
    CallBackError,
    NoPhone,
    NotCallable,
    ask,
    callable_number,
    number_of_call,
    queue_of,
    start,
)

__all__ = [
    "CALL_BACK",
    "AlreadyCalling",
    "CallBackError",
    "NoPhone",
    "NotCallable",
    "QueuedCallBack",
    "ask",
    "callable_number",
    "number_of_call",
    "queue_of",
    "start",
]

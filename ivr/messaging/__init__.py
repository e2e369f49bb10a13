"""Messages to engineers and callers: paging by SMS, e-mail and chat, and SMS replies."""

"""The telephone side of the OTYS support desk: the office and emergency lines on Twilio Voice.

The modules directly in this package are what every line shares (parameters, prompts, hours,
the call log, the webhook decorator); each subpackage is one job and may use them, never the
other way round. The application itself is assembled in `app`.
"""

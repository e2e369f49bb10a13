"""The ground both sides stand on: settings, the database session, the one clock, phone numbers.

It imports neither the telephone side (`ivr`) nor the ticket side (`tickets`), nor the shell
(`app`).
"""

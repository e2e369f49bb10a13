"""Helpdesk events: every ticket change, written in its cause's transaction, for the helpdesk.

`events` names the event types and writes one delivery row per receiver (`emit`), `documents`
turns a row into the JSON document sent, `deliveries` claims, records and lists them, `models`
holds the rows. Sending them over HTTP is the service's job (`ivr.messaging.helpdesk`).
"""

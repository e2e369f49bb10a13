"""Place simulated, Twilio-signed calls from a terminal (`ivr call`): a tool for people.

Nothing in the service imports this package; it talks to a running service over HTTP (or a
test client) exactly as Twilio would.
"""

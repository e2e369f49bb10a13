"""The webhooks Twilio's console points at for every number: incoming calls and status changes."""

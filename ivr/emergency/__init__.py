"""Answer the emergency line: recognise the caller, open an urgent ticket, reach an engineer."""

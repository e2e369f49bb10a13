"""Answer the office line: greeting, menu, teams, colleagues, reception and voicemail."""

"""Personal data under the AVG/GDPR: retention, a person's export and erasure, and their trail.

`retention` purges what is older than the configured days, `recordings` deletes recordings at
Twilio, `people` finds everything held about one person, `export` and `erase` act on it,
`journal_files` covers the outage journal on disk, and `daily` runs the purge once a day.
"""

"""Personal data under the AVG/GDPR: retention, a person's export and erasure, and their trail.

`retention` purges what is older than the configured days and `daily` runs it once a day;
`recordings` deletes recordings at Twilio; `people` finds who a request is about and their rows,
`export` and `erase` act on them, `scrub` finds them in any table's free text, and
`journal_files` covers the outage journal on disk.
"""

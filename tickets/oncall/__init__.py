"""The rota's calendars: shifts imported from iCalendar files, and each engineer's own feed.

`calendar` reads and writes iCalendar, `imports` replaces a level's shifts from a file, `feeds`
hands out the engineers' secret feed tokens, `feed_routes` serves `/oncall/feed/<token>.ics`,
`forms` the On call page's forms. Who is on call at a moment is `tickets.rota`.
"""

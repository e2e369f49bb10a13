"""Statistics of the support desk: emergency calls, their outcomes and timings, office choices.

`period` the days asked about (in the desk's time zone), `localtime` bucketing stored UTC
moments into local hours in SQL, `percentiles` medians and 90th percentiles in SQL, `figures`
the figures of one period, `export` the same figures as one CSV table.
"""

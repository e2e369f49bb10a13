"""Metrics for Prometheus on the telephone side: what is counted (`counters`), and how long each
webhook took (`timing`).

The ticket side's metric objects are in `tickets.metrics`; `GET /metrics` (`app.metrics`) serves
both, with what is read at scrape time.
"""

"""The Statistics page: a period's emergency calls and office choices as charts, and as CSV."""

from __future__ import annotations

from flask import Response, current_app, render_template, request

from core.db import db
from tickets import labels
from tickets.dashboard import bp, first_error
from tickets.dashboard.display import local_today, local_zone
from tickets.forms import StatisticsForm
from tickets.statistics.export import NO_ORGANISATION, statistics_csv
from tickets.statistics.figures import OUTCOME_GROUPS, WEEKDAYS, Statistics, gather_statistics
from tickets.statistics.period import Period, PeriodError, choose_period

# The chart and the table show the busiest organisations; the CSV has every one.
CHART_ORGANISATIONS = 15
TABLE_ORGANISATIONS = 50


def chosen_period(form: StatisticsForm) -> Period:
    """Return the period the form asks for; raise PeriodError with a message for staff."""
    if not form.validate():
        raise PeriodError(first_error(form))
    period = choose_period(form.first.data, form.last.data, today=local_today(), zone=local_zone())
    form.first.data, form.last.data = period.first, period.last
    return period


def gather(period: Period, *, organisations: int | None = None) -> Statistics:
    """Return the period's figures, with the office menu's as the telephone side counts them."""
    office = current_app.config.get("OFFICE_MENU_FIGURES")
    return gather_statistics(db.session, period=period, office=office, organisations=organisations)


def chart_data(stats: Statistics) -> dict:
    """Return what the page's charts draw, as JSON-ready values."""
    calls = stats.calls
    days = sorted(calls.per_day)
    organisations = stats.organisations[:CHART_ORGANISATIONS]
    return {
        "days": {
            "labels": [day.strftime("%a %d %b") for day in days],
            "series": [
                {
                    "key": group,
                    "label": labels.outcome_group_label(group),
                    "data": [calls.per_day[day][group] for day in days],
                }
                for group in OUTCOME_GROUPS
            ],
        },
        "heat": {"weekdays": list(WEEKDAYS), "cells": calls.heat},
        "organisations": {
            "labels": [item.name or NO_ORGANISATION for item in organisations],
            "calls": [item.calls for item in organisations],
            "answered": [item.answered for item in organisations],
        },
        "engineers": {
            "labels": [item.name for item in stats.engineers],
            "in_hours": [item.in_hours for item in stats.engineers],
            "out_of_hours": [item.out_of_hours for item in stats.engineers],
        },
        "office": {
            "labels": [label for label, _ in stats.office_choices],
            "calls": [calls for _, calls in stats.office_choices],
        },
    }


@bp.get("/statistics")
def statistics():
    """Show the statistics of a period, 30 days until today unless asked otherwise."""
    form = StatisticsForm(request.args)
    try:
        period = chosen_period(form)
    except PeriodError as exc:
        return render_template("support/statistics.html", form=form, error=str(exc)), 400
    stats = gather(period, organisations=TABLE_ORGANISATIONS)
    return render_template(
        "support/statistics.html",
        form=form,
        stats=stats,
        charts=chart_data(stats),
        csv_args={"from": period.first.isoformat(), "to": period.last.isoformat()},
        chart_organisations=CHART_ORGANISATIONS,
        outcome_groups=OUTCOME_GROUPS,
        weekdays=WEEKDAYS,
    )


@bp.get("/statistics.csv")
def statistics_download():
    """Download the same figures as one CSV table."""
    form = StatisticsForm(request.args)
    try:
        period = chosen_period(form)
    except PeriodError as exc:
        return Response(str(exc) + "\n", status=400, mimetype="text/plain")
    name = f"statistics-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(
        statistics_csv(gather(period)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )

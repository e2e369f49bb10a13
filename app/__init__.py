"""The shell: the application factory that assembles both sides into one service.

`app` may use everything (`ivr`, `tickets`, `core`); nothing imports `app` but the command line
and the tests. Its modules: `server` and `admission` (gunicorn), `background` (the loops every
server process runs), `health` and `metrics` (what operations read), `schema` and `migrations`
(the database's shape), and `cli` (the `ivr` command).
"""

from __future__ import annotations

import logging
from functools import partial

from flask import Flask

from core.db import db
from core.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Create the service: settings, database, blueprints and error handling."""
    settings = settings or load_settings()
    app = Flask(__name__)
    configure(app, settings)
    register_extensions(app, settings)
    register_metrics(app)
    register_blueprints(app)
    register_error_handlers(app)
    return app


def configure(app: Flask, settings: Settings) -> None:
    """Copy the settings Flask and its extensions read into `app.config`."""
    secure = settings.public_url.startswith("https://")
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key.get_secret_value(),
        MAX_CONTENT_LENGTH=256 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    from ivr.messaging.policy import paging_policy

    app.config["PAGING"] = paging_policy(settings)
    from ivr.messaging.helpdesk import helpdesk_policy

    app.config["HELPDESK"] = helpdesk_policy(settings)
    from tickets.incidents import IncidentPolicy

    app.config["INCIDENTS"] = IncidentPolicy.from_settings(settings.incidents)
    # The dashboard's statistics count the office menu's choices with the menu's own rule.
    from ivr.office.figures import count_menu_choices

    app.config["OFFICE_MENU_FIGURES"] = partial(count_menu_choices, office=settings.office)
    # The Staff and On call pages send test pages through the telephone side's real channels.
    from ivr.messaging.testpage import send_test_page

    app.config["TEST_PAGE"] = partial(send_test_page, settings)
    # First of all request hooks: an oversized webhook is refused before anyone reads its form.
    from ivr.signatures import limit_webhook_size

    app.before_request(limit_webhook_size)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # werkzeug's development server (`flask run`) logs every request's path and query.
    from core.log_redaction import redact_logger

    redact_logger(logging.getLogger("werkzeug"))


def register_extensions(app: Flask, settings: Settings) -> None:
    """Bind the database and the web extensions to the app."""
    from app.schema import register_models

    register_models()
    from flask import request

    from ivr.signatures import is_support_path

    db.init_app(
        app,
        settings.resolved_database_url,
        timeout_seconds=settings.database_timeout_seconds,
        support_connections=settings.server.support_threads,
        is_support_request=lambda: is_support_path(request.path),
    )

    from tickets import auth

    auth.init_app(app)


def register_metrics(app: Flask) -> None:
    """Serve `/metrics` and time every webhook (after the size check, before anything else)."""
    from app import metrics

    metrics.init_app(app)


def register_blueprints(app: Flask) -> None:
    """Attach every feature's blueprint."""
    from tickets.routing import RowIdConverter

    app.url_map.converters["id"] = RowIdConverter
    from app import health
    from ivr import outage
    from ivr.emergency import call_back_routes as call_back
    from ivr.emergency import routes as emergency
    from ivr.office import routes as office
    from ivr.voice import routes as voice

    app.register_blueprint(voice.bp)
    app.register_blueprint(office.bp)
    app.register_blueprint(emergency.bp)
    app.register_blueprint(call_back.bp)
    app.register_blueprint(health.bp)

    from ivr.messaging import routes as messaging

    app.register_blueprint(messaging.bp)

    from tickets import auth, dashboard

    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(outage.bp)

    from tickets import api as tickets_api
    from tickets.oncall import feed_routes

    app.register_blueprint(tickets_api.bp)
    app.register_blueprint(feed_routes.bp)
    # Browsers ask for /favicon.ico whatever the page says: the dashboard's icon answers.
    app.add_url_rule("/favicon.ico", "favicon", _favicon)


def _favicon():
    from flask import redirect, url_for

    return redirect(url_for("dashboard.static", filename="favicon.svg"), code=301)


def register_error_handlers(app: Flask) -> None:
    """Make sure a caller never hears Twilio's 'application error'."""
    from ivr import outage

    outage.init_app(app, app.config["SETTINGS"])

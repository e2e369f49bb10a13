"""Staff sign-in for the dashboard: Flask-Login sessions, CSRF on every form, login throttling."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import db, unit_of_work
from core.settings import current_settings
from tickets import sign_in_guard
from tickets.forms import LoginForm, LogoutForm
from tickets.models import StaffUser
from tickets.passwords import hash_password, password_matches
from tickets.staff import check_password, end_sessions, find_staff

LOGIN_REFUSED = (
    "That did not work: the e-mail address or password is not right, or sign-in is "
    "locked for a while after too many attempts."
)
SOURCE_REFUSED = (
    f"Too many failed sign-ins from your network: sign-in from it is paused for "
    f"{sign_in_guard.LOCK_MINUTES} minutes. Try again later."
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)

login_manager = LoginManager()
csrf = CSRFProtect()

bp = Blueprint("auth", __name__, url_prefix="/support", template_folder="templates")


class StaffLogin(UserMixin):
    """The signed-in staff member, as Flask-Login sees them."""

    def __init__(self, staff: StaffUser) -> None:
        self.staff = staff

    def get_id(self) -> str:
        # A password change, signing out or deactivation alters the fingerprint, which ends
        # every session (and remember-me cookie) issued before, also copies of it.
        return f"{self.staff.id}:{_fingerprint(self.staff)}"

    @property
    def is_active(self) -> bool:
        return self.staff.active


def _fingerprint(staff: StaffUser) -> str:
    material = f"{staff.password_hash}:{staff.session_epoch}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")


def authenticate(session: Session, *, email: str, password: str, source: str) -> StaffUser | None:
    """Return the staff member if the password is right and this source is not locked out.

    Failures are counted per e-mail address and source (`tickets.sign_in_guard`): too many for
    one address lock that address out for that source only; too many from one source, for
    any addresses, raise SourceLocked. A locked attempt is refused without hashing anything.
    Every other failure costs one password hash, whether the account exists or the password
    is wrong, and gets the same answer.
    """
    email = (email or "").strip().lower()[:320]
    now = utcnow()
    if sign_in_guard.source_locked(session, source=source, now=now):
        raise sign_in_guard.SourceLocked(source)
    if sign_in_guard.address_locked(session, email=email, source=source, now=now):
        return None
    staff = find_staff(session, email) if email else None
    if staff is None:
        password_matches(_dummy_hash(), password)  # take as long as a real check
    elif staff.active and check_password(staff, password):
        sign_in_guard.forget_failures(session, email=email, source=source)
        return staff
    sign_in_guard.record_failure(session, email=email, source=source, now=now)
    session.flush()
    return None


def forwarded_for() -> str | None:
    """Return the address the nearest proxy put last in X-Forwarded-For, if it put one there."""
    last = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    return last[:64] or None


def client_address() -> str:
    """Return the client's address: the direct peer, or what a trusted proxy says it saw."""
    peer = request.remote_addr or "unknown"
    proxies = current_settings().trusted_proxies
    forwarded = forwarded_for()
    if forwarded and is_trusted_proxy(peer, proxies):
        return forwarded
    return peer[:64]


def is_trusted_proxy(remote_addr: str | None, proxies: list[str]) -> bool:
    """Return whether the direct peer is one of the configured reverse proxies."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    for proxy in proxies:
        try:
            if address in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue
    return False


def current_staff() -> StaffUser:
    """Return the signed-in staff member's account."""
    return current_user.staff


def _safe_next(target: str | None) -> str:
    """Return `target` if it is a path of the dashboard itself, else the ticket list."""
    if target and target.isprintable() and " " not in target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/support")
            and "\\" not in target
        ):
            return target
    return url_for("dashboard.tickets")


@bp.route("/login", methods=["GET", "POST"])
@unit_of_work  # a refused sign-in is counted too
def login():
    """Sign a staff member in."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.tickets"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            staff = authenticate(
                db.session,
                email=form.email.data,
                password=form.password.data,
                source=sign_in_guard.source_key(client_address()),
            )
        except sign_in_guard.SourceLocked:
            page = render_template("support/login.html", form=form, error=SOURCE_REFUSED)
            return page, 429, {"Retry-After": str(sign_in_guard.LOCK_MINUTES * 60)}
        if staff is not None:
            target = _safe_next(request.args.get("next"))
            cookie_session.clear()
            login_user(StaffLogin(staff))
            flash(f"Signed in as {staff.name}.", "success")
            return redirect(target, code=303)
        return render_template("support/login.html", form=form, error=LOGIN_REFUSED), 401
    status = 400 if request.method == "POST" else 200
    return render_template("support/login.html", form=form, error=None), status


@bp.post("/logout")
@unit_of_work
def logout():
    """Sign the staff member out."""
    form = LogoutForm()
    form.validate_on_submit()
    if current_user.is_authenticated:
        end_sessions(db.session, staff=current_staff())
    logout_user()
    cookie_session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"), code=303)


@login_manager.user_loader
def _load_staff(identifier: str) -> StaffLogin | None:
    staff_id, _, fingerprint = identifier.partition(":")
    if not staff_id.isdigit():
        return None
    staff = db.session.get(StaffUser, int(staff_id))
    if staff is None or not staff.active or fingerprint != _fingerprint(staff):
        return None
    return StaffLogin(staff)


@login_manager.unauthorized_handler
def _sign_in_first():
    if request.path.startswith("/support/feed") or request.accept_mimetypes.best == (
        "application/json"
    ):
        return jsonify(error="sign in first"), 401
    flash("Sign in to see the support dashboard.", "info")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def protect_forms() -> None:
    """Check the CSRF token of a form post: a request hook of the pages people sign in to.

    Only the blueprints of those pages (sign-in and the dashboard) run it; everything else
    (signed webhooks, the bearer-token API, calendar feeds) carries no session cookie.
    """
    csrf.protect()


def _refuse_forged_form(error: CSRFError):
    return (
        render_template(
            "support/error.html",
            title="Form refused",
            message="This form has expired or did not come from this site. "
            "Go back, reload the page and try again.",
        ),
        400,
    )


def harden(response):
    """Keep pages out of caches and frames; allow only our own scripts and media.

    A response hook of the sign-in and dashboard blueprints; their static files are left alone.
    """
    if not (request.endpoint or "").endswith(".static"):
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def init_app(app: Flask) -> None:
    """Set up sign-in and CSRF protection on the app."""
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    # The blueprints of the pages people sign in to check tokens themselves (`protect_forms`),
    # so other blueprints (webhooks, the token API) never need an exemption.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.register_error_handler(CSRFError, _refuse_forged_form)


bp.before_request(protect_forms)
bp.after_request(harden)

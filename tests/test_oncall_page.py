import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from support_helpers import make_staff, page_token, sign_in

from tickets.audit import recent_changes
from tickets.models import OnCallShift
from tickets.rota import add_override, on_call_at

AMS = ZoneInfo("Europe/Amsterdam")


def admin_and_engineers(session):
    make_staff(session, email="admin@otys.test", name="Ada Admin", role="admin")
    anna = make_staff(session, email="anna@otys.test", name="Anna Jansen", phone="+31611111111")
    carla = make_staff(session, email="carla@otys.test", name="Carla Smit", phone="+31633333333")
    make_staff(session, email="nophone@otys.test", name="No Phone")
    return anna, carla


def local_input(moment: datetime) -> str:
    return moment.astimezone(AMS).strftime("%Y-%m-%dT%H:%M")


def post_override(client, engineer, starts_at, ends_at, *, level="1", csrf=True):
    """Post the override form; datetimes are typed as local times, text as given."""
    data = {
        "level": level,
        "engineer": str(engineer.id),
        "starts_at": starts_at if isinstance(starts_at, str) else local_input(starts_at),
        "ends_at": ends_at if isinstance(ends_at, str) else local_input(ends_at),
    }
    if csrf:
        data["csrf_token"] = page_token(client, "/support/oncall")
    return client.post("/support/oncall/overrides", data=data)


def test_the_page_needs_a_sign_in(client):
    assert client.get("/support/oncall").status_code in (302, 401)


def test_an_admin_adds_an_override_that_is_on_call_at_once(client, session, clock):
    anna, carla = admin_and_engineers(session)
    sign_in(client, "admin@otys.test")
    page = client.get("/support/oncall").get_data(as_text=True)
    assert "Nobody is on the rota now" in page
    assert "Carla Smit (+31633333333)" in page and "No Phone" not in page
    answer = post_override(
        client, carla, clock.now - timedelta(hours=1), clock.now + timedelta(hours=8)
    )
    assert answer.status_code == 303
    levels = on_call_at(session, clock.now)
    assert [(level.level, [e.name for e in level.engineers]) for level in levels] == [
        (1, ["Carla Smit"])
    ]
    page = client.get("/support/oncall").get_data(as_text=True)
    assert re.search(r'id="now-level-1".*Carla Smit', page, re.S)
    assert "Override" in page
    shift = session.scalar(select(OnCallShift))
    assert shift.note == "override by admin@otys.test"
    (change,) = recent_changes(session)
    assert (change.actor, change.action) == ("admin@otys.test", "oncall_override_added")
    assert "Carla Smit covers level 1" in change.detail
    removed = client.post(
        f"/support/oncall/overrides/{shift.id}/remove",
        data={"csrf_token": page_token(client, "/support/oncall")},
    )
    assert removed.status_code == 303
    assert on_call_at(session, clock.now) == []


def test_an_override_that_ends_before_it_starts_is_refused(client, session, clock):
    _, carla = admin_and_engineers(session)
    sign_in(client, "admin@otys.test")
    answer = post_override(client, carla, clock.now, clock.now - timedelta(hours=1), level="2")
    assert answer.status_code == 400
    assert "The end must come after the start" in answer.get_data(as_text=True)
    assert session.scalar(select(OnCallShift)) is None


def test_agents_see_the_rota_but_cannot_change_it(client, session, clock):
    _, carla = admin_and_engineers(session)
    make_staff(session, email="agent@otys.test")
    sign_in(client, "agent@otys.test")
    page = client.get("/support/oncall").get_data(as_text=True)
    assert "Add an override" not in page
    answer = post_override(client, carla, clock.now, clock.now + timedelta(hours=1))
    assert answer.status_code == 403
    assert session.scalar(select(OnCallShift)) is None


def test_an_override_without_the_csrf_token_changes_nothing(client, session, clock):
    _, carla = admin_and_engineers(session)
    sign_in(client, "admin@otys.test")
    answer = post_override(client, carla, clock.now, clock.now + timedelta(hours=1), csrf=False)
    assert answer.status_code == 400
    assert session.scalar(select(OnCallShift)) is None


def test_an_engineer_makes_and_ends_their_own_feed(client, session, clock):
    anna, _ = admin_and_engineers(session)
    sign_in(client, "anna@otys.test")
    made = client.post(
        "/support/oncall/feed", data={"csrf_token": page_token(client, "/support/oncall")}
    )
    assert made.status_code == 200
    url = re.search(r'id="feed-url"[^>]*value="([^"]+)"', made.get_data(as_text=True)).group(1)
    path = url[url.index("/oncall/feed/") :]
    client.post("/support/logout", data={"csrf_token": page_token(client, "/support/oncall")})
    assert client.get(path).status_code == 200
    sign_in(client, "anna@otys.test")
    client.post(
        "/support/oncall/feed/end", data={"csrf_token": page_token(client, "/support/oncall")}
    )
    assert client.get(path).status_code == 404


def test_an_override_a_month_ahead_is_listed_and_can_be_removed(client, session, clock):
    _, carla = admin_and_engineers(session)
    sign_in(client, "admin@otys.test")
    post_override(client, carla, clock.now + timedelta(days=30), clock.now + timedelta(days=31))
    shift = session.scalar(select(OnCallShift))
    page = client.get("/support/oncall").get_data(as_text=True)
    assert f'id="override-{shift.id}"' in page
    assert f"/support/oncall/overrides/{shift.id}/remove" in page


def test_an_engineer_who_cannot_be_rung_is_not_shown_as_on_call(client, session, clock):
    anna, _ = admin_and_engineers(session)
    add_override(
        session,
        level=1,
        staff=anna,
        starts_at=clock.now - timedelta(hours=1),
        ends_at=clock.now + timedelta(hours=1),
        added_by="t",
    )
    session.commit()
    anna.active = False
    session.commit()
    sign_in(client, "admin@otys.test")
    page = client.get("/support/oncall").get_data(as_text=True)
    assert "Nobody is on the rota now" in page
    assert 'id="rota-level-1"' not in page


def test_an_override_in_year_one_is_refused_not_a_crash(client, session, clock):
    _, carla = admin_and_engineers(session)
    sign_in(client, "admin@otys.test")
    answer = post_override(client, carla, "0001-01-01T00:00", "0001-01-02T00:00")
    assert answer.status_code == 400
    assert "out of range" in answer.get_data(as_text=True)
    assert session.scalar(select(OnCallShift)) is None

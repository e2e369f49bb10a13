"""A major outage on the emergency line, against a real `ivr serve` and the Twilio stand-in.

    .venv/bin/python -m bench.incident                        # this checkout
    .venv/bin/python -m bench.incident --before /tmp/ivr-old  # ... and an older checkout first

The scenario of issue 21: 20 organisations' super users call within 30 seconds, every one
reporting a major outage (triage key 1); the two level-1 engineers (Anna, Bas) take the
first two calls and stay on them; Carla (level 2) takes the first call that reaches her.
Engineers on a call do not pick up another; everyone else's phone rings out. Callers who
hear that the outage is known choose in turn: an engineer anyway (1), a call-back (2) or
hanging up; a caller told that everyone is busy asks for a call-back (2).

It prints, per checkout: callers put through, seconds each caller rang phones of engineers
on a call (simulated: a `<Dial>` nobody answers lasts its `timeout`), later callers told the
outage is known, and the SMS each engineer got (Twilio's Messages API at the stand-in, until
the sender has been quiet). With this checkout it then calls the first waiting caller back
through the line (the API, the Calls API at the stand-in, the engineer's leg, the caller).

The older checkout is set up through its own commands (`ivr directory import`, `ivr staff
add`, `ivr oncall import`, `ivr hours set`) and served by its own code, from a fresh SQLite
database in a temporary directory each run (or `--database-url`): `git worktree add --detach
/tmp/ivr-old 10036df` makes one. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.checkout import ENGINEERS, caller_number, ivr_command, seed
from bench.flows import ACCOUNT_SID, HttpTransport, Twilio
from bench.servers import Server, free_port, service_environment
from bench.standin import TwilioStandIn

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_ACCOUNT_SID = "AC" + "1c1d" * 8
SMS_FROM = "+31612340000"
EMERGENCY = "+31318584918"
# What a caller heard when told the outage is known (the default Dutch prompt).
TOLD = "bekend sinds"
TARGET_PAGES = 3
TARGET_BUSY_SECONDS = 60
MAX_WEBHOOKS = 40


# ------------------------------------------------------------------ the engineers' phones


class Phones:
    """The engineers' phones: free ones pick up (and press 1), busy ones ring out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy: set[str] = set()

    def pick_up(self, numbers: list[str]) -> tuple[str | None, bool]:
        """Return the free engineer who picks up (made busy), and whether a busy phone rang."""
        engineers = {phone for _, phone, _ in ENGINEERS.values()}
        with self.lock:
            rang_busy = any(number in self.busy for number in numbers if number in engineers)
            for number in numbers:
                if number in engineers and number not in self.busy:
                    self.busy.add(number)
                    return number, rang_busy
        return None, rang_busy

    def hang_up(self, number: str) -> None:
        with self.lock:
            self.busy.discard(number)


# ------------------------------------------------------------------ one caller


@dataclass
class Caller:
    """One caller of the scenario and what happened to them."""

    n: int
    choice: str  # at "the outage is known": "1", "2" or "-" (hangs up)
    sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    heard: list[str] = field(default_factory=list)
    busy_seconds: int = 0
    ring_seconds: int = 0
    bridged_to: str | None = None
    held: tuple[str, dict] | None = None  # a bridged call's <Dial> action, posted at its end
    voicemail: bool = False
    call_back: bool = False
    error: str | None = None

    @property
    def told(self) -> bool:
        return any(TOLD in text for text in self.heard)


class CallWalker:
    """Walk one caller's call the way Twilio would, answering as `Caller` says."""

    def __init__(self, twilio: Twilio, phones: Phones, caller: Caller, think: float) -> None:
        self.twilio, self.phones, self.caller, self.think = twilio, phones, caller, think
        self.samples: list = []
        self.webhooks = 0
        self.form = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": caller.sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": caller_number(caller.n),
            "Caller": caller_number(caller.n),
            "To": EMERGENCY,
            "Called": EMERGENCY,
        }

    def post(self, path: str, params: dict, form: dict | None = None) -> ET.Element:
        self.webhooks += 1
        if self.webhooks > MAX_WEBHOOKS:
            raise RuntimeError("the call loops")
        status, body = self.twilio.send(path, {**(form or self.form), **params}, self.samples)
        if status >= 300:
            raise RuntimeError(f"{path} answered HTTP {status}")
        if not body.startswith(b"<?xml"):
            return ET.Element("Response")
        return ET.fromstring(body)  # noqa: S314 - our own server on 127.0.0.1

    def run(self) -> None:
        path = "/voice/incoming"
        root = self.post(path, {})
        self.form["CallStatus"] = "in-progress"
        while root is not None:
            root, path = self.perform(root, path)
        if self.caller.held is None:
            self.end()

    def end(self) -> None:
        self.post("/voice/status", {"CallStatus": "completed", "CallDuration": "60"})

    def follow(self, path: str, target: str | None, params: dict) -> tuple[ET.Element, str]:
        time.sleep(self.think)
        target = self.twilio.resolve(path, target or path)
        return self.post(target, params), target

    def perform(self, root: ET.Element, path: str) -> tuple[ET.Element | None, str]:
        for verb in root:
            if verb.tag == "Say":
                self.caller.heard.append(verb.text or "")
            elif verb.tag == "Gather":
                self.caller.heard += [say.text or "" for say in verb.iter("Say")]
                keys = self.answer(verb.get("action") or path)
                if keys or verb.get("actionOnEmptyResult") == "true":
                    params = {"Digits": keys} if keys else {}
                    return self.follow(path, verb.get("action"), params)
            elif verb.tag == "Redirect":
                return self.follow(path, verb.text, {})
            elif verb.tag == "Dial":
                return self.dial(verb, path)
            elif verb.tag == "Record":
                self.caller.voicemail = True
                recording = {
                    "RecordingUrl": "https://api.twilio.com/r",
                    "RecordingSid": "RE" + uuid.uuid4().hex,
                }
                return self.follow(
                    path, verb.get("action"), {**recording, "RecordingDuration": "9"}
                )
            elif verb.tag in ("Hangup", "Reject"):
                return None, path
        return None, path

    def answer(self, action: str) -> str:
        """Return the keys the caller presses at a <Gather> ('' stays silent)."""
        if "/triage" in action:
            return "1"
        if "/known" in action:
            self.caller.call_back = self.caller.choice == "2"
            return "" if self.caller.choice == "-" else self.caller.choice
        if "/busy" in action:
            self.caller.call_back = True
            return "2"
        return ""

    def dial(self, verb: ET.Element, path: str) -> tuple[ET.Element | None, str]:
        numbers = [(n.text or "").strip() for n in verb if n.tag == "Number"]
        timeout = int(verb.get("timeout") or 30)
        picked, rang_busy = self.phones.pick_up(numbers)
        if picked is not None and self.accept(verb, path, picked):
            self.caller.bridged_to = picked
            self.caller.held = (self.twilio.resolve(path, verb.get("action") or path), {})
            return None, path
        if picked is not None:
            self.phones.hang_up(picked)
        self.caller.ring_seconds += timeout
        if rang_busy:
            self.caller.busy_seconds += timeout
        return self.follow(path, verb.get("action"), {"DialCallStatus": "no-answer"})

    def accept(self, verb: ET.Element, path: str, number: str) -> bool:
        """Run the engineer's screened leg and press 1; return whether it bridges."""
        [element] = [n for n in verb if (n.text or "").strip() == number]
        leg = {
            **self.form,
            "CallSid": "CA" + uuid.uuid4().hex,
            "ParentCallSid": self.caller.sid,
            "Direction": "outbound-dial",
            "To": number,
            "Called": number,
        }
        target = self.twilio.resolve(path, element.get("url"))
        root = self.post(target, {}, form=leg)
        for _ in range(3):
            gather = root.find("Gather")
            if gather is None:
                return root.find("Hangup") is None
            target = self.twilio.resolve(target, gather.get("action") or target)
            root = self.post(target, {"Digits": "1"}, form=leg)
        return False


# ------------------------------------------------------------------ the scenario


@dataclass
class Outcome:
    """The figures of one checkout."""

    label: str
    callers: list[Caller]
    sms: dict[str, int]
    call_back: str = ""

    def figures(self) -> dict:
        later = [c for c in self.callers if c.n > 3]
        not_through = [c for c in self.callers if c.bridged_to is None]
        return {
            "put_through": sum(c.bridged_to is not None for c in self.callers),
            "callers": len(self.callers),
            "busy_seconds_max": max((c.busy_seconds for c in self.callers), default=0),
            "busy_seconds_each": sorted({c.busy_seconds for c in not_through}),
            "rang_busy_phones": sum(c.busy_seconds > 0 for c in self.callers),
            "told": sum(c.told for c in later),
            "later_callers": len(later),
            "sms_per_engineer": self.sms,
            "voicemails": sum(c.voicemail for c in self.callers),
            "call_backs_asked": sum(c.call_back for c in self.callers),
            "errors": [f"caller {c.n}: {c.error}" for c in self.callers if c.error],
        }


class Scenario:
    """One checkout served by `ivr serve`, the stand-in, and the scenario's callers."""

    def __init__(self, tree: Path, args: argparse.Namespace, label: str) -> None:
        self.tree, self.args, self.label = tree, args, label
        self.workdir = Path(tempfile.mkdtemp(prefix="ivr-incident-"))
        self.port = free_port()
        self.public_url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.standin = TwilioStandIn(BENCH_ACCOUNT_SID, self.token).start()
        url = args.database_url or f"sqlite:///{self.workdir / 'bench.sqlite3'}"
        self.env = service_environment(
            database_url=url,
            public_url=self.public_url,
            auth_token=self.token,
            workdir=self.workdir,
            account_sid=BENCH_ACCOUNT_SID,
            api_url=self.standin.url,
            sms_from=SMS_FROM,
            pythonpath=str(tree),
        )
        self.server: Server | None = None
        self.phones = Phones()

    def twilio(self) -> tuple[HttpTransport, Twilio]:
        transport = HttpTransport("127.0.0.1", self.port)
        return transport, Twilio(transport, public_url=self.public_url, auth_token=self.token)

    def start(self) -> None:
        seed(self.tree, self.env, self.workdir, self.args.organisations)
        argv = [*ivr_command(self.tree), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.server = Server("ivr serve", argv, env=self.env, cwd=self.workdir, port=self.port,
                             log=self.workdir / "service.log")  # fmt: skip
        self.server.start(workers=2)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.standin.stop()

    def walk(self, caller: Caller) -> None:
        transport, twilio = self.twilio()
        try:
            CallWalker(twilio, self.phones, caller, self.args.think).run()
        except (RuntimeError, OSError, ET.ParseError) as exc:
            caller.error = str(exc)
        finally:
            transport.close()

    def run(self) -> Outcome:
        count = self.args.organisations
        choices = ("1", "2", "-")
        callers = [Caller(n, choices[n % 3]) for n in range(1, count + 1)]
        window = self.args.window
        began = time.monotonic()
        for caller in callers[:2]:  # level 1 takes the first two calls and stays on them
            self.walk(caller)
        threads = []
        for index, caller in enumerate(callers[2:], start=2):
            delay = began + window * index / (count - 1) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(target=self.walk, args=(caller,))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        sms = self.wait_for_pages()
        call_back = self.call_back(callers) if self.label == "after" else ""
        self.end_held_calls(callers)
        return Outcome(self.label, callers, sms, call_back)

    def wait_for_pages(self) -> dict[str, int]:
        """Wait until the sender has been quiet a while (at most a minute); count SMS each."""
        deadline, last, quiet_since = time.monotonic() + 60, -1, time.monotonic()
        while time.monotonic() < deadline:
            now_sent = self.standin.accepted
            if now_sent != last:
                last, quiet_since = now_sent, time.monotonic()
            elif time.monotonic() - quiet_since > 8:
                break
            time.sleep(0.5)
        return {
            name.split()[0]: len(self.standin.to(phone)) for name, phone, _ in ENGINEERS.values()
        }

    def end_held_calls(self, callers: list[Caller]) -> None:
        """End the conversations still going: the dial's action, then the call's end."""
        for caller in callers:
            if caller.held is None:
                continue
            transport, twilio = self.twilio()
            walker = CallWalker(twilio, self.phones, caller, 0)
            walker.form["CallStatus"] = "completed"
            done = {"DialCallStatus": "completed", "DialBridged": "true", "DialCallDuration": "120"}
            walker.post(caller.held[0], done)
            walker.end()
            transport.close()

    def call_back(self, callers: list[Caller]) -> str:
        """Carla is free again: she calls the first waiting caller back through the line."""
        asked = [caller for caller in callers if caller.call_back]
        carla = next(c for c in callers if c.bridged_to == ENGINEERS["carla"][1])
        if not asked:
            return "nobody asked"
        transport, twilio = self.twilio()
        walker = CallWalker(twilio, self.phones, carla, 0)
        walker.form["CallStatus"] = "completed"
        walker.post(carla.held[0], {"DialCallStatus": "completed", "DialBridged": "true"})
        walker.end()
        carla.held = None
        self.phones.hang_up(ENGINEERS["carla"][1])
        ticket = self.ticket_of(asked[0])
        status = self.api_post(
            f"/api/tickets/{ticket}/call-back", {"engineer": "carla@bench.example"}
        )
        deadline = time.monotonic() + 20
        while not self.standin.calls and time.monotonic() < deadline:
            time.sleep(0.2)
        if not self.standin.calls:
            return f"API {status}, no call placed"
        placed = self.standin.calls[0]
        leg = {**walker.form, "CallSid": placed.sid, "From": placed.from_, "To": placed.to,
               "Direction": "outbound-api", "CallStatus": "in-progress"}  # fmt: skip
        path = urlsplit(placed.url)
        screening = walker.post(path.path + "?" + path.query, {}, form=leg)
        action = twilio.resolve("/voice/call-back/engineer", screening.find("Gather").get("action"))
        connect = walker.post(action, {"Digits": "1"}, form=leg)
        dial = connect.find("Dial")
        dialled = [n.text for n in dial]
        walker.post(twilio.resolve(action, dial.get("action")),
                    {"DialCallStatus": "completed", "DialBridged": "true"}, form=leg)  # fmt: skip
        status_path = urlsplit(placed.status_callback)
        walker.post(status_path.path + "?" + status_path.query,
                    {"CallStatus": "completed", "CallDuration": "90"}, form=leg)  # fmt: skip
        return (
            f"API {status}; Calls API rang {placed.to} from {placed.from_}; after her 1, "
            f"{','.join(dialled)} dialled with callerId {dial.get('callerId')}"
        )

    def api_token(self) -> str:
        done = subprocess.run(
            [*ivr_command(self.tree), "staff", "token", "carla@bench.example"],
            env=self.env, cwd=self.workdir, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    def api_post(self, path: str, body: dict) -> int:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        headers = {
            "Authorization": f"Bearer {self.api_token()}",
            "Content-Type": "application/json",
        }
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        status = connection.getresponse().status
        connection.close()
        return status

    def ticket_of(self, caller: Caller) -> str:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        headers = {"Authorization": f"Bearer {self.api_token()}"}
        connection.request("GET", "/api/tickets?per_page=100", headers=headers)
        tickets = json.loads(connection.getresponse().read())["tickets"]
        connection.close()
        return next(t["number"] for t in tickets if t["caller"] == caller_number(caller.n))


# ------------------------------------------------------------------ the report


def report(outcomes: list[Outcome], args: argparse.Namespace) -> int:
    """Print the figures side by side; return 1 when this checkout misses a target."""
    figures = [outcome.figures() for outcome in outcomes]
    width = 26
    print()
    print(
        f"Major outage: {args.organisations} organisations in {args.window:g} s, "
        "level 1 on the first two calls"
    )
    print(f"{'':40}" + "".join(f"{o.label:>{width}}" for o in outcomes))

    def row(name: str, cells: list[str]) -> None:
        print(f"{name:40}" + "".join(f"{cell:>{width}}" for cell in cells))

    row("put through", [f"{f['put_through']} of {f['callers']}" for f in figures])
    row("callers who rang busy phones", [str(f["rang_busy_phones"]) for f in figures])
    row("s each rang busy phones (at most)", [str(f["busy_seconds_max"]) for f in figures])
    row("later callers told it is known", [f"{f['told']} of {f['later_callers']}" for f in figures])
    for who in ("Anna", "Bas", "Carla"):
        row(
            f"SMS to {who} (pages and notices)",
            [str(f["sms_per_engineer"].get(who, 0)) for f in figures],
        )
    row("voicemails", [str(f["voicemails"]) for f in figures])
    row("call-backs asked", [str(f["call_backs_asked"]) for f in figures])
    for outcome in outcomes:
        if outcome.call_back:
            print(f"\ncall-back ({outcome.label}): {outcome.call_back}")
    for outcome, f in zip(outcomes, figures, strict=True):
        for error in f["errors"]:
            print(f"!! {outcome.label}: {error}")
    last = figures[-1]
    met = (
        max(last["sms_per_engineer"].values()) <= TARGET_PAGES
        and last["busy_seconds_max"] <= TARGET_BUSY_SECONDS
        and last["told"] == last["later_callers"]
        and not last["errors"]
    )
    print(
        f"\ntargets ({outcomes[-1].label}): <= {TARGET_PAGES} SMS per engineer, "
        f"<= {TARGET_BUSY_SECONDS} s ringing busy phones, every later caller told: "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


def run_one(tree: Path, args: argparse.Namespace, label: str) -> Outcome:
    """Run the scenario on one checkout; its work directory stays only when something failed."""
    scenario = Scenario(tree, args, label)
    print(f"{label}: {tree} (work directory {scenario.workdir}) ...", flush=True)
    outcome = None
    try:
        scenario.start()
        outcome = scenario.run()
        return outcome
    finally:
        scenario.stop()
        if outcome is not None and not outcome.figures()["errors"]:
            shutil.rmtree(scenario.workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before", type=Path, help="an older checkout to run the scenario on first"
    )
    parser.add_argument("--organisations", type=int, default=20)
    parser.add_argument("--window", type=float, default=30.0, help="seconds all callers call in")
    parser.add_argument(
        "--think", type=float, default=0.3, help="seconds a person takes per answer"
    )
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes = []
    if args.before:
        outcomes.append(run_one(args.before.resolve(), args, "before"))
    outcomes.append(run_one(PROJECT_ROOT, args, "after"))
    code = report(outcomes, args)
    if args.json:
        print(json.dumps({o.label: o.figures() for o in outcomes}, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The floor: the least a webhook can do, served the way `ivr serve` serves the real service.

It checks the Twilio signature with `RequestValidator` and answers a fixed `<Gather>` built with
the twilio library, under gunicorn with the worker count, worker class and logging `ivr serve`
uses, behind the same admission (whole requests, a few at a time). Whatever the service costs
beyond this is the cost of its own logic.
"""

from __future__ import annotations

import argparse

from flask import Flask, Response, abort, request
from gunicorn.app.base import BaseApplication
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from app.server import admit_whole_requests
from app.server import gunicorn_options as service_options
from core.settings import Settings, load_settings

FLOOR_PATH = "/floor"


def create_floor_app(settings: Settings) -> Flask:
    """Return the bare Flask app: signature check, fixed `<Gather>`."""
    app = Flask(__name__)
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    public_url = settings.public_url
    voice = settings.voices[settings.default_language]

    @app.post(FLOOR_PATH)
    def floor():
        path = request.full_path.rstrip("?") if request.query_string else request.path
        base = public_url or f"{request.scheme}://{request.host}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(base + path, request.form, signature):
            abort(403)
        # Built per request, as any real webhook builds its answer.
        response = VoiceResponse()
        gather = response.gather(num_digits=1, action=FLOOR_PATH, method="POST", timeout=5)
        gather.say("Toets 1 om verder te gaan.", language=voice.language, voice=voice.voice)
        return Response(str(response), status=200, mimetype="text/xml")

    return app


def gunicorn_options(settings: Settings, *, host: str, port: int, workers: int | None) -> dict:
    """Return the gunicorn options `ivr serve` uses, for another app."""
    return service_options(settings, host=host, port=port, workers=workers)


class _FloorServer(BaseApplication):
    """Gunicorn application serving the floor app."""

    def __init__(self, settings: Settings, options: dict) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return admit_whole_requests(create_floor_app(self.settings), self.settings)


def main(argv: list[str] | None = None) -> None:
    """Serve the floor app with the service's settings (from the same environment)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    options = gunicorn_options(settings, host=args.host, port=args.port, workers=args.workers)
    _FloorServer(settings, options).run()


if __name__ == "__main__":
    main()

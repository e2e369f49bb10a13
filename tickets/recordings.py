"""Fetch call recordings from Twilio for staff to play, without ever exposing the credentials."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)

TIMEOUT = (5, 30)  # seconds to connect, seconds between bytes


class RecordingUnavailable(Exception):
    """The recording cannot be fetched; the message is safe to show to staff."""

    def __init__(self, message: str, status_code: int = 502) -> None:
        super().__init__(message)
        self.status_code = status_code


def media_url(recording_url: str) -> str:
    """Return the MP3 address of a Twilio recording URL."""
    if recording_url.endswith((".mp3", ".wav")):
        return recording_url
    return recording_url + ".mp3"


def is_twilio_url(url: str) -> bool:
    """Return whether `url` points at Twilio over HTTPS (so our credentials go nowhere else)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


def open_recording(
    recording_url: str | None,
    *,
    account_sid: str,
    auth_token: str,
    byte_range: str | None = None,
) -> requests.Response:
    """Start streaming a recording from Twilio; raise RecordingUnavailable when it cannot."""
    if not recording_url:
        raise RecordingUnavailable("This call has no recording.", 404)
    if not account_sid:
        raise RecordingUnavailable(
            "Recordings cannot be played: the Twilio account SID (TWILIO_ACCOUNT_SID) is not "
            "configured."
        )
    url = media_url(recording_url)
    if not is_twilio_url(url):
        raise RecordingUnavailable("The recording address is not a Twilio address.")
    headers = {"Range": byte_range} if byte_range else {}
    try:
        upstream = requests.get(
            url, auth=(account_sid, auth_token), headers=headers, stream=True, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        log.warning("recording fetch failed: %s", type(exc).__name__)
        raise RecordingUnavailable("Twilio could not be reached to fetch the recording.") from None
    if upstream.status_code not in (200, 206):
        upstream.close()
        log.warning("recording fetch answered HTTP %s", upstream.status_code)
        if upstream.status_code == 404:
            raise RecordingUnavailable("Twilio no longer has this recording.", 404)
        raise RecordingUnavailable(
            f"Twilio did not deliver the recording (HTTP {upstream.status_code})."
        )
    return upstream

from ivr import params


def test_counters_from_our_query_are_clamped_to_their_limit_and_odd_ones_are_zero():
    assert params.count("2", limit=3) == 2
    assert params.count("7", limit=3) == 3
    assert params.count("9" * 400, limit=3) == 3
    for odd in (None, "", "-1", "abc", "²", "١", "1.5"):
        assert params.count(odd, limit=3) == 0


def test_durations_and_sequence_numbers_are_plain_digits_up_to_seven():
    assert params.whole_number("0") == 0
    assert params.whole_number(" 14 ") == 14
    assert params.whole_number("9999999") == 9999999
    for odd in (None, "", "-3", "+5", "1_000", "٣", "1e3", "10000000", "9" * 3000):
        assert params.whole_number(odd) is None


def test_recording_urls_are_https_only_for_both_lines():
    url = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"
    assert params.recording_url(url) == url
    for odd in (
        "http://api.twilio.com/r/RE1",
        "javascript:alert(1)",
        "https://",
        "https://a b",
        "https://" + "r" * 600,
        "",
        None,
    ):
        assert params.recording_url(odd) is None


def test_caller_id_is_e164_or_none_when_withheld_or_odd():
    assert params.caller_id("+31 6 12345678") == "+31612345678"
    assert params.caller_id("0612345678") == "+31612345678"
    for withheld in ("anonymous", "Restricted", "+266696687", "", None, "sip:a@b", "client:x"):
        assert params.caller_id(withheld) is None
    assert params.caller_id("+31612345678\x00") is None


def test_final_call_statuses_mean_the_caller_is_gone():
    for status in params.CALL_FINAL_STATUSES:
        assert params.is_final(status.upper())
    for status in ("ringing", "in-progress", "queued", "", None):
        assert not params.is_final(status)


def test_the_callers_language_falls_back_to_the_default(settings):
    assert params.language(settings, "en") == "en"
    assert params.language(settings, " en ") == "en"
    for odd in ("xx", "", None, "e" * 3000):
        assert params.language(settings, odd) == settings.default_language


def test_sids_digits_and_speech_are_read_safely():
    assert params.sid("CA" + "a" * 32) == "CA" + "a" * 32
    assert params.sid("CA 1") is None
    assert params.sid("x" * 65) is None
    assert params.digits("12\x003") == "12?3"
    assert params.digits("1" * 3000) == "1" * params.MAX_INPUT
    assert params.speech(" a\tb\n\x00c ") == "a b c"
    assert params.speech("\x00\x01") is None
    assert params.confidence("0.42") == 0.42
    assert params.confidence("nan") is None
    assert params.index("1", 2) == 1
    assert params.index("2", 2) is None

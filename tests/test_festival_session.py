"""Festival in one process per voice (synth/festival_session.py): the samples text2wave gives, and an
engine that hangs, dies or reports an error ends in one line, never a hang."""

from __future__ import annotations

import pytest

from speech_app.synth.engines import FestivalEngine, SynthesisError
from speech_app.synth.festival_session import FestivalSession, SessionError

FESTIVAL = FestivalEngine()
INSTALLED = FESTIVAL.available()
needs_festival = pytest.mark.skipif(not INSTALLED, reason=f"festival not installed ({FESTIVAL.packages})")
SHORT_DEADLINE_SECONDS = 0.5  # for a fake engine that never answers


@pytest.fixture
def festival():
    engine = FestivalEngine()
    yield engine
    engine.close()


@needs_festival
def test_a_session_writes_the_same_file_as_text2wave(festival, tmp_path):
    voices = festival.voices()
    # every voice, twice over in another order, with other rates and pitches: what one utterance
    # leaves behind in a session must not change the next one
    utterances = [("computer", voices[0], 0.9, 1.5), ("jarvis", voices[-1], 1.2, -2.0),
                  ("lights on", voices[len(voices) // 2], 1.05, 0.0)]
    utterances += [(w, v, 2.1 - s, -p) for w, v, s, p in reversed(utterances)]
    for i, (word, voice, speed, pitch) in enumerate(utterances):
        festival.synthesize(word, voice, speed, pitch, tmp_path / f"session{i}.wav")
        festival.synthesize_text2wave(word, voice, speed, pitch, tmp_path / f"text2wave{i}.wav")
    for i, utterance in enumerate(utterances):
        session = (tmp_path / f"session{i}.wav").read_bytes()
        assert len(session) > 1000, utterance
        assert session == (tmp_path / f"text2wave{i}.wav").read_bytes(), utterance


@needs_festival
def test_an_error_inside_festival_is_one_line_and_the_session_goes_on(festival, tmp_path):
    voice = festival.voices()[0]
    session = FestivalSession(timeout_seconds=30)
    try:
        with pytest.raises(SessionError, match="unbound variable") as raised:
            session.synthesize(["(no_such_function_here)"], "yes", tmp_path / "bad.wav")
        assert "\n" not in str(raised.value)
        session.synthesize(festival.evals(voice, 1.0, 0.0), "yes", tmp_path / "good.wav")
    finally:
        session.close()
    festival.synthesize_text2wave("yes", voice, 1.0, 0.0, tmp_path / "text2wave.wav")
    assert (tmp_path / "good.wav").read_bytes() == (tmp_path / "text2wave.wav").read_bytes()


def test_a_hung_engine_is_killed_at_the_deadline_with_one_line(tmp_path):
    session = FestivalSession(SHORT_DEADLINE_SECONDS, command=("sleep", "600"))  # reads nothing, says nothing
    with pytest.raises(SessionError, match=r"^no result after \d+ s$"):
        session.synthesize([], "yes", tmp_path / "out.wav")
    assert session._process is None  # killed and waited for, not left behind


def test_a_dead_engine_is_one_line_naming_what_it_said_and_the_next_utterance_starts_another(tmp_path):
    command = ("sh", "-c", "echo 'cannot load voice' >&2; exit 3")
    session = FestivalSession(30, command=command)
    for _ in range(2):
        with pytest.raises(SessionError, match=r"^the engine stopped: cannot load voice$"):
            session.synthesize([], "yes", tmp_path / "out.wav")


def test_an_engine_that_cannot_start_is_a_synthesis_error_naming_engine_and_voice(festival, tmp_path):
    festival._sessions["kal"] = FestivalSession(30, command=("/nonexistent/festival", "--pipe"))
    with pytest.raises(SynthesisError, match=r"^festival kal: cannot run /nonexistent/festival"):
        festival.synthesize("yes", "kal", 1.0, 0.0, tmp_path / "out.wav")

"""One small adapter per offline speech synthesizer.

An adapter knows whether its engine is installed, which English voices it offers, and how to
render a word with a voice at a speed (rate multiplier, 1.0 = the voice's own) and a pitch offset
(semitones from the voice's own pitch) into a WAV file at the engine's native rate. Adding an
engine means one subclass of `SpeechEngine` and one entry in `ALL_ENGINES`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from html import escape  # the XML escapes (&, <, >); xml.sax's pulls in urllib, 30 ms of start-up

ENGINE_TIMEOUT_SECONDS = 30.0  # one word takes well under a second; a hung engine must not stall a worker
MAIN_SECTION_PACKAGES = "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
INSTALL_COMMAND = f"sudo apt-get install {MAIN_SECTION_PACKAGES}"


class SynthesisError(Exception):
    """An engine ran but gave no audio; the message names the engine, the voice and why."""


def semitones_to_ratio(semitones: float) -> float:
    return 2.0 ** (semitones / 12.0)


class SpeechEngine:
    name = ""
    packages = ""  # what to install for this engine (Debian package names)
    section = "main"  # Debian archive section; the project's setup installs only main
    licence = ""  # of the voice data, which is what matters for a model trained on it
    max_share: float | None = None  # cap on this engine's share of clips when others exist
    program = ""  # the executable that speaks: its identity stands for the engine's version (`fingerprint`)

    def available(self) -> bool:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """"<program> <size> <mtime>" of the installed executable: an upgrade or reinstall changes it, so that
        cached clips of another version are not taken for this one's (no engine has a cheap version query)."""
        found = shutil.which(self.program) if self.program else None
        if not found:
            return f"{self.program} missing"
        stat = os.stat(os.path.realpath(found))
        return f"{self.program} {stat.st_size} {stat.st_mtime_ns}"

    def voices(self) -> list[str]:
        """Voice names, sorted so that seeded choices are reproducible."""
        raise NotImplementedError

    def voice_licence(self, voice: str) -> str:
        return self.licence

    def commercial_use(self, voice: str) -> bool:
        """Whether the voice's licence lets a model trained on its speech be shipped in a product."""
        return True

    def native_pitch(self, voice: str) -> bool:
        """False where the engine ignores a pitch setting; the generator then shifts the audio."""
        return True

    def synthesize(self, text: str, voice: str, speed: float, pitch_semitones: float, wav_path: Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """End whatever the engine keeps running between utterances (most keep nothing)."""

    def _run(self, argv: list[str], voice: str, stdin_text: str | None = None) -> str:
        """Run the engine with no shell; raise SynthesisError on failure. Returns stdout."""
        try:
            done = subprocess.run(argv, input=stdin_text, capture_output=True, text=True,
                                  timeout=ENGINE_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"{self.name} {voice}: no result after {ENGINE_TIMEOUT_SECONDS:.0f} s") from None
        except OSError as err:
            raise SynthesisError(f"{self.name} {voice}: cannot run {argv[0]} ({err})") from None
        if done.returncode != 0:
            detail = " ".join(done.stderr.split())[-200:] or f"exit status {done.returncode}"
            raise SynthesisError(f"{self.name} {voice}: {detail}")
        return done.stdout


class EspeakEngine(SpeechEngine):
    """Formant synthesis: robotic, but a large space of accents x voice variants."""

    program = "espeak-ng"
    name = "espeak-ng"
    packages = "espeak-ng"
    licence = "GPL-3.0+"
    max_share = 1 / 3  # intelligible but robotic: a model must not learn espeak's sound as "the word"
    # voice files, not language codes: espeak-ng ignores the variant in "en-gb+f2" but not in "en+f2"
    ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
    VARIANTS = ("klatt4", "klatt2", "m1", "m3", "m7", "f2", "f3", "f4")
    DEFAULT_WORDS_PER_MINUTE = 175.0  # espeak-ng's own default rate
    DEFAULT_PITCH = 50  # espeak-ng's -p scale runs 0..99
    PITCH_UNITS_PER_SEMITONE = 5.0  # measured: -p 50 -> 65 raises the median F0 by about 3.5 semitones

    def available(self) -> bool:
        return shutil.which("espeak-ng") is not None

    def voices(self) -> list[str]:
        installed = {file.removeprefix("gmw/").lower() for file in self._voice_files()}
        return sorted(f"{a}+{v}" for a in self.ACCENTS if a in installed for v in self.VARIANTS)

    def _voice_files(self) -> list[str]:
        """The File column of `espeak-ng --voices=en` ("gmw/en-US", "mb/mb-us1", ...)."""
        listed = self._run(["espeak-ng", "--voices=en"], "(voice list)")
        return [row.split()[4] for row in listed.splitlines()[1:] if len(row.split()) > 4]

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        self._espeak(text, voice, voice, speed, pitch_semitones, wav_path)

    def _espeak(self, text, voice, espeak_voice, speed, pitch_semitones, wav_path):
        pitch = round(self.DEFAULT_PITCH + pitch_semitones * self.PITCH_UNITS_PER_SEMITONE)
        argv = ["espeak-ng", "-v", espeak_voice, "-s", str(round(self.DEFAULT_WORDS_PER_MINUTE * speed)),
                "-p", str(min(max(pitch, 0), 99)), "-w", str(wav_path), "--stdin"]
        self._run(argv, voice, stdin_text=text)  # text on stdin, so a word starting with "-" is no option


class MbrolaEngine(EspeakEngine):
    """MBROLA diphone voices driven by espeak-ng (`-v mb-us1`): natural-sounding, non-commercial."""

    program = "mbrola"
    name = "mbrola"
    packages = "mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1"
    section = "contrib/non-free"
    licence = "MBROLA licence: non-commercial use only"
    max_share = None
    DATA_DIR = Path("/usr/share/mbrola")

    def available(self) -> bool:
        return shutil.which("espeak-ng") is not None and shutil.which("mbrola") is not None and bool(self.voices())

    def commercial_use(self, voice: str) -> bool:
        return False

    def voices(self) -> list[str]:
        """`us1`, `en1`, and accented voices such as `de1-en`, wherever their diphone data is installed."""
        names = {file.removeprefix("mb/mb-") for file in self._voice_files() if file.startswith("mb/mb-")}
        return sorted(n for n in names if (self.DATA_DIR / n.split("-")[0]).is_dir())

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        self._espeak(text, voice, f"mb-{voice}", speed, pitch_semitones, wav_path)


class FliteEngine(SpeechEngine):
    program = "flite"
    name = "flite"
    packages = "flite"
    licence = "CMU Flite licence (BSD-like, commercial use allowed)"
    # Median F0 of each voice as measured here; flite takes an absolute target mean, not an offset.
    # rms ignores the setting, so it is shifted afterwards.
    VOICE_F0_HZ = {"kal16": 96.0, "awb": 139.0, "slt": 170.0}
    VOICES = ("kal16", "awb", "rms", "slt")

    def available(self) -> bool:
        return shutil.which("flite") is not None

    def voices(self) -> list[str]:
        listed = self._run(["flite", "-lv"], "(voice list)").split(":")[-1].split()
        return sorted(v for v in self.VOICES if v in listed)

    def native_pitch(self, voice: str) -> bool:
        return voice in self.VOICE_F0_HZ

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        argv = ["flite", "-voice", voice, "--setf", f"duration_stretch={1.0 / speed:.3f}"]
        if voice in self.VOICE_F0_HZ:
            target_hz = self.VOICE_F0_HZ[voice] * semitones_to_ratio(pitch_semitones)
            argv += ["--setf", f"int_f0_target_mean={target_hz:.1f}"]
        self._run(argv + ["-t", text, "-o", str(wav_path)], voice)


class FestivalEngine(SpeechEngine):
    """Festival's `text2wave`: diphone voices take duration and F0 settings; HTS voices a rate."""

    program = "festival"
    name = "festival"
    packages = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
    licence = "Festival/CMU voice licence (BSD-like, commercial use allowed)"
    VOICE_DIR = Path("/usr/share/festival/voices")
    # short name -> festival voice; rab and don come from contrib/non-free (festvox-rablpc16k, festvox-don)
    VOICES = {"kal": "kal_diphone", "ked": "ked_diphone", "slt": "cmu_us_slt_arctic_hts",
              "rab": "rab_diphone", "don": "don_diphone"}
    DIPHONE_F0_HZ = {"kal": 105.0, "ked": 105.0}  # target_f0_mean in the voices' own int_lr_params
    DIPHONE_F0_STD_HZ = 14.0

    def available(self) -> bool:
        return shutil.which("festival") is not None and shutil.which("text2wave") is not None and bool(self.voices())

    def voices(self) -> list[str]:
        installed = {p.name for p in self.VOICE_DIR.glob("*/*")}
        return sorted(short for short, full in self.VOICES.items() if full in installed)

    def native_pitch(self, voice: str) -> bool:
        return voice in self.DIPHONE_F0_HZ

    def __init__(self):
        # voice -> FestivalSession, each started on its voice's first utterance in this process. One
        # per voice: after another voice, Festival's state made a rare utterance differ slightly from
        # text2wave's (measured: "marvin" in ked after "sheila" in slt and "marvin" in kal, 0.003 of full scale)
        self._sessions: dict = {}

    def evals(self, voice: str, speed: float, pitch_semitones: float) -> list[str]:
        """The Scheme forms that set the voice, rate and pitch, evaluated in order before synthesis."""
        full = self.VOICES[voice]
        forms = [f"(voice_{full})"]  # selecting a voice resets what the previous utterance set
        if full.endswith("_hts"):
            forms.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {speed:.3f}))))')
        else:
            forms.append(f"(Parameter.set 'Duration_Stretch {1.0 / speed:.3f})")
        if voice in self.DIPHONE_F0_HZ:
            mean = self.DIPHONE_F0_HZ[voice] * semitones_to_ratio(pitch_semitones)
            forms.append(f"(set! int_lr_params '((target_f0_mean {mean:.1f}) (target_f0_std "
                         f"{self.DIPHONE_F0_STD_HZ}) (model_f0_mean 170) (model_f0_std 34)))")
        return forms

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        """In this process's Festival session (one start for every utterance; the samples text2wave gives)."""
        from .festival_session import FestivalSession, SessionError

        if os.name != "posix":  # the session waits on a pipe with select(), which only POSIX offers for pipes
            return self.synthesize_text2wave(text, voice, speed, pitch_semitones, wav_path)
        session = self._sessions.setdefault(voice, FestivalSession(ENGINE_TIMEOUT_SECONDS))
        try:
            session.synthesize(self.evals(voice, speed, pitch_semitones), text, Path(wav_path))
        except SessionError as err:
            raise SynthesisError(f"{self.name} {voice}: {err}") from None

    def synthesize_text2wave(self, text, voice, speed, pitch_semitones, wav_path):
        """One `text2wave` process for the utterance: Festival starts (about 0.3 s of CPU) every time."""
        argv = ["text2wave"] + [arg for form in self.evals(voice, speed, pitch_semitones) for arg in ("-eval", form)]
        self._run(argv + ["-o", str(wav_path)], voice, stdin_text=text)

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()


class PicoEngine(SpeechEngine):
    program = "pico2wave"
    name = "pico"
    packages = "libttspico-utils"
    section = "non-free"
    licence = "SVOX Pico language data: Apache-2.0 claimed, no source (Debian non-free)"
    LANG_DIR = Path("/usr/share/pico/lang")
    VOICES = ("en-GB", "en-US")

    def available(self) -> bool:
        return shutil.which("pico2wave") is not None and bool(self.voices())

    def voices(self) -> list[str]:
        return [v for v in self.VOICES if (self.LANG_DIR / f"{v}_ta.bin").is_file()]

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        # pico2wave has no rate or pitch options; its markup carries both, in percent of the default
        markup = (f"<speed level='{round(100 * speed)}'><pitch level='{round(100 * semitones_to_ratio(pitch_semitones))}'>"
                  f"{escape(text, quote=False)}</pitch></speed>")
        self._run(["pico2wave", "-l", voice, "-w", str(wav_path), "--", markup], voice)


class RhvoiceEngine(SpeechEngine):
    program = "RHVoice-test"
    name = "rhvoice"
    packages = "rhvoice rhvoice-english"
    section = "non-free"
    licence = "LGPL-2.1+"
    VOICE_DIR = Path("/usr/share/RHVoice/voices")
    ENGLISH_VOICES = ("alan", "bdl", "clb", "evgeniy-eng", "lyubov", "slt")
    NON_COMMERCIAL_VOICES = ("evgeniy-eng", "lyubov")

    def available(self) -> bool:
        return shutil.which("RHVoice-test") is not None and bool(self.voices())

    def voices(self) -> list[str]:
        return [v for v in self.ENGLISH_VOICES if (self.VOICE_DIR / v).is_dir()]

    def voice_licence(self, voice: str) -> str:
        return "CC-BY-NC-ND-4.0: non-commercial" if voice in self.NON_COMMERCIAL_VOICES else self.licence

    def commercial_use(self, voice: str) -> bool:
        return voice not in self.NON_COMMERCIAL_VOICES

    def synthesize(self, text, voice, speed, pitch_semitones, wav_path):
        argv = ["RHVoice-test", "-p", voice, "-r", str(round(100 * speed)),
                "-t", str(round(100 * semitones_to_ratio(pitch_semitones))), "-o", str(wav_path)]
        self._run(argv, voice, stdin_text=text)


# Main-section engines first: the install hint and the summary list them in this order.
ALL_ENGINES: tuple[SpeechEngine, ...] = (EspeakEngine(), FliteEngine(), FestivalEngine(), MbrolaEngine(),
                                         PicoEngine(), RhvoiceEngine())


def engine_names() -> list[str]:
    return [e.name for e in ALL_ENGINES]


def available_engines() -> list[SpeechEngine]:
    """The installed engines that offer at least one English voice."""
    found = []
    for engine in ALL_ENGINES:
        try:
            if engine.available() and engine.voices():
                found.append(engine)
        except SynthesisError:
            continue  # an engine that cannot even list its voices is as good as absent
    return found

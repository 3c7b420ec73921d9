"""Deterministic synthetic music clips for training and probing audio representations.

Each clip is a few seconds of multi-instrument music rendered with pure NumPy: a chord
progression and melody in one of 24 keys, placed on a beat grid at a sampled tempo with a
style-specific rhythm (four-on-the-floor, backbeat, swing, sparse, chiptune), played by six
synthetic timbres (additive pad, additively plucked string, FM bell, band-limited lead,
bass, noise-based drums) with per-clip variation in brightness, decay and detune.

The labels are chosen so that no single cue solves every task: key needs pitch and harmony
(relative major/minor keys share pitch classes, so the tonic must be heard as a centre),
tempo needs rhythm, tags and style need timbre, and styles deliberately overlap in tempo
range and instrumentation. Loudness, mix balance and a noise floor vary randomly so that
level is a nuisance factor rather than a shortcut. Captions describe the same attributes in
varied English for text-audio objectives.

Everything is seeded by ``(seed, index)`` so clips are reproducible and independent of the
order in which they are generated.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SAMPLE_RATE_DEFAULT: int = 16000

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MODES = ("major", "minor")
KEYS: tuple[str, ...] = tuple(f"{n} {m}" for n in NOTE_NAMES for m in MODES)
INSTRUMENTS = ("pad", "pluck", "bell", "lead", "bass", "drums")
TAGS: tuple[str, ...] = (*INSTRUMENTS, "fast", "slow", "loud", "quiet", "percussive", "sustained")
FAST_BPM, SLOW_BPM = 125.0, 85.0
LOUD_DB, QUIET_DB = -14.0, -24.0

_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10))
_MAX_MIDI = 83  # ~988 Hz: fundamentals stay far below Nyquist even at 8 kHz
_TABLE = 4096
# Octave windows (MIDI of the tonic) per instrument; melodies reach ~16 semitones above.
_REGISTERS = {"pad": (45, 60), "pluck": (48, 64), "bell": (55, 67), "lead": (52, 67), "bass": (28, 43)}
_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (0, 5, 1, 4), (0, 2, 3, 4))
# 16 steps per 4/4 bar: kick, snare, hat.
_DRUM_PATTERNS = {
    "four": ("x...x...x...x...", "....x.......x...", "..x...x...x...x."),
    "backbeat": ("x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "swing": ("x.........x.....", "............x...", "x...x.x.x...x.x."),
    "sparse": ("x.......x.......", "........x.......", "x...x...x...x..."),
    "chip": ("x.....x.x.......", "....x.......x...", "xxxxxxxxxxxxxxxx"),
}
_BASS_PATTERNS = {  # (beat in bar, duration in beats, scale-degree offset from chord root)
    "whole": ((0.0, 4.0, 0),),
    "eighths": tuple((i * 0.5, 0.45, 0) for i in range(8)),
    "offbeat": tuple((i + 0.5, 0.4, 0) for i in range(4)),
    "rootfifth": ((0.0, 1.8, 0), (2.0, 1.8, 4)),
    "octaves": tuple((i * 0.5, 0.4, 7 * (i % 2)) for i in range(8)),
}


@dataclasses.dataclass(frozen=True)
class _Style:
    name: str
    tempo: tuple[float, float]
    always: tuple[str, ...]
    sometimes: tuple[tuple[str, float], ...]
    roles: tuple[tuple[str, tuple[str, ...]], ...]  # instrument -> possible musical roles
    drums: str | None
    swing: tuple[float, float]  # share of the beat taken by the first eighth; 0.5 = straight
    durations: tuple[float, ...]  # melody note lengths in beats
    bass: str
    arp_step: float
    chord_len: float


_STYLE_SPECS = (
    _Style(
        "ambient",
        (60.0, 80.0),
        ("pad",),
        (("bell", 0.7), ("pluck", 0.25), ("bass", 0.3)),
        (("pad", ("chords",)), ("bell", ("melody",)), ("pluck", ("arp",))),
        None,
        (0.5, 0.5),
        (1.0, 2.0, 2.0, 3.0, 4.0),
        "whole",
        1.0,
        4.0,
    ),
    _Style(
        "rock",
        (100.0, 140.0),
        ("pluck", "bass", "drums"),
        (("lead", 0.35), ("pad", 0.15)),
        (("pluck", ("strum",)), ("lead", ("melody",)), ("pad", ("chords",))),
        "backbeat",
        (0.5, 0.5),
        (0.5, 1.0, 1.0, 2.0),
        "eighths",
        0.5,
        1.0,
    ),
    _Style(
        "electronic",
        (118.0, 135.0),
        ("lead", "bass", "drums"),
        (("pad", 0.5), ("bell", 0.25)),
        (("lead", ("arp",)), ("bell", ("melody",)), ("pad", ("chords",))),
        "four",
        (0.5, 0.5),
        (0.5, 0.5, 1.0, 1.5),
        "offbeat",
        0.25,
        4.0,
    ),
    _Style(
        "folk",
        (80.0, 110.0),
        ("pluck",),
        (("bass", 0.4), ("drums", 0.3), ("bell", 0.2), ("lead", 0.2)),
        (("pluck", ("arp", "strum")), ("lead", ("melody",)), ("bell", ("melody",))),
        "sparse",
        (0.5, 0.58),
        (0.5, 1.0, 1.0, 1.5, 2.0),
        "rootfifth",
        0.5,
        2.0,
    ),
    _Style(
        "jazz",
        (90.0, 150.0),
        ("bass", "drums"),
        (("pad", 0.6), ("bell", 0.5), ("pluck", 0.4)),
        (("pad", ("chords",)), ("bell", ("melody",)), ("pluck", ("melody", "strum"))),
        "swing",
        (0.6, 0.7),
        (0.5, 0.5, 1.0, 1.5),
        "walking",
        0.5,
        2.0,
    ),
    _Style(
        "chiptune",
        (140.0, 170.0),
        ("lead",),
        (("bass", 0.7), ("drums", 0.6), ("bell", 0.15)),
        (("lead", ("melody", "arp")), ("bell", ("arp",))),
        "chip",
        (0.5, 0.5),
        (0.25, 0.25, 0.5, 0.5, 1.0),
        "octaves",
        0.25,
        4.0,
    ),
)
STYLES: tuple[str, ...] = tuple(s.name for s in _STYLE_SPECS)
TEMPO_RANGE: tuple[float, float] = (
    min(s.tempo[0] for s in _STYLE_SPECS),
    max(s.tempo[1] for s in _STYLE_SPECS),
)


@dataclasses.dataclass(frozen=True)
class SynthClip:
    audio: np.ndarray  # float32, shape (num_samples,), mono, in [-1, 1]
    style: int
    tags: tuple[int, ...]
    key: int
    tempo: float
    caption: str


# ----------------------------------------------------------------------------- score


def _degree_midi(base: int, mode: int, degree: int) -> int:
    return base + _SCALES[mode][degree % 7] + 12 * (degree // 7)


def _chord(base: int, mode: int, root: int, size: int = 3) -> list[int]:
    notes = [_degree_midi(base, mode, root + 2 * k) for k in range(size)]
    if mode == 1 and root % 7 == 4:
        notes[1] += 1  # harmonic-minor dominant: the leading tone pins the minor tonic
    return notes


def _melody(rng: np.random.Generator, prog: list[int], n_beats: float, durs: tuple[float, ...]) -> list:
    notes, pos, deg = [], 0.0, int(rng.choice([0, 7]))
    while pos < n_beats:
        dur = float(rng.choice(durs))
        root = prog[int(pos // 4)]
        if pos % 1 == 0 and rng.random() < 0.7:  # strong beats prefer chord tones
            cands = [c for c in range(-2, 10) if (c - root) % 7 in (0, 2, 4) and abs(c - deg) <= 4]
            deg = int(rng.choice(cands)) if cands else deg
        else:
            deg = int(np.clip(deg + rng.choice([-2, -1, -1, 1, 1, 2]), -2, 9))
        if rng.random() > 0.1 or not notes:
            notes.append([pos, dur, deg])
        pos += dur
    if notes:
        notes[-1][2] = 0 if notes[-1][2] < 4 else 7  # resolve to the tonic
    return notes


def _score(
    rng: np.random.Generator, style: _Style, inst: str, mode: int, base: int, prog: list[int], n_beats: float
) -> list[tuple[float, float, int, float]]:
    """Return (onset beat, duration beats, midi, velocity) for one instrument."""
    role = "bass" if inst == "bass" else str(rng.choice(dict(style.roles)[inst]))
    ev: list[tuple[float, float, int, float]] = []
    n_bars = len(prog)
    if role == "melody":
        for pos, dur, deg in _melody(rng, prog, n_beats, style.durations):
            ev.append((pos, dur, _degree_midi(base, mode, deg), 0.8 + 0.2 * (pos % 4 == 0)))
    elif role == "arp":
        shape = [0, 1, 2, 3, 2, 1] if rng.random() < 0.5 else [0, 1, 2, 3]
        steps = int(np.ceil(n_beats / style.arp_step))
        for i in range(steps):
            pos = i * style.arp_step
            tones = _chord(base, mode, prog[min(int(pos // 4), n_bars - 1)])
            tones.append(tones[0] + 12)
            ev.append((pos, style.arp_step * 0.9, tones[shape[i % len(shape)]], 0.7 + 0.3 * (i % 4 == 0)))
    elif role in ("chords", "strum"):
        hit = style.chord_len * (1.0 if role == "chords" else float(rng.choice([1.0, 2.0])))
        for i in range(int(np.ceil(n_beats / hit))):
            pos = i * hit
            size = 4 if style.name == "jazz" else 3
            for j, m in enumerate(_chord(base, mode, prog[min(int(pos // 4), n_bars - 1)], size)):
                lag = 0.02 * j if role == "strum" else 0.0  # strummed strings sound one by one
                ev.append((pos + lag, hit * 0.95, m, 0.75 + 0.25 * (pos % 4 == 0)))
    elif style.bass == "walking":
        for bar, root in enumerate(prog):
            nxt = prog[bar + 1] if bar + 1 < n_bars else 0
            degs = [
                root,
                root + int(rng.choice([2, 4, 5])),
                root + int(rng.choice([2, 4, 6])),
                nxt + int(rng.choice([-1, 1])),
            ]
            ev += [(bar * 4 + b, 0.9, _degree_midi(base, mode, d), 0.85) for b, d in enumerate(degs)]
    else:
        for bar, root in enumerate(prog):
            ev += [
                (bar * 4 + b, d, _degree_midi(base, mode, root + o), 0.85 + 0.15 * (b == 0))
                for b, d, o in _BASS_PATTERNS[style.bass]
            ]
    return [(p, d, m - 12 * max(0, (m - _MAX_MIDI + 11) // 12), v) for p, d, m, v in ev if p < n_beats]


# ----------------------------------------------------------------------------- voices


def _midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69) / 12)


def _wavetable(amps: np.ndarray, harmonics: np.ndarray) -> np.ndarray:
    spec = np.zeros(_TABLE // 2 + 1, np.complex128)
    spec[harmonics] = -0.5j * _TABLE * amps  # sine phase for every harmonic
    table = np.fft.irfft(spec, _TABLE)
    return (table / (np.abs(table).max() + 1e-9)).astype(np.float32)


def _harmonics(f: float, sr: int, cap: int, odd_only: bool = False) -> np.ndarray:
    h = np.arange(1, max(1, min(cap, int(0.45 * sr / f))) + 1)
    return h[h % 2 == 1] if odd_only else h


def _voice_params(rng: np.random.Generator, inst: str, style: str) -> dict:
    """Small per-clip timbre variation so instruments are classes, not fixed waveforms."""
    u = rng.uniform
    return {
        "pad": {
            "tilt": u(1.2, 2.4),
            "detune": u(0.002, 0.008),
            "attack": u(0.25, 0.8),
            "release": u(0.3, 0.8),
        },
        "pluck": {"decay": u(1.5, 4.0), "damp": u(0.3, 1.0), "pos": u(0.1, 0.3), "ring": u(0.1, 0.4)},
        "bell": {
            "ratio": float(rng.choice([1.4, 2.0, 3.5, 2.76])),
            "index": u(1.5, 4.0),
            "idecay": u(0.2, 0.6),
            "decay": u(0.6, 1.6),
        },
        "lead": {
            "square": style == "chiptune" or rng.random() < 0.3,
            "bright": u(0.05, 0.3),
            "vib": u(0.0, 0.006),
            "rate": u(4.5, 6.5),
        },
        "bass": {"bright": u(0.0, 3.0), "decay": u(0.5, 2.0)},
    }.get(inst, {})


def _wrapped(cycles: np.ndarray) -> np.ndarray:
    # rint is far cheaper than % on float64; float32 sin is SIMD-fast once the phase is small
    return (cycles - np.rint(cycles)).astype(np.float32) * np.float32(2 * np.pi)


def _voice(inst: str, f: float, dur: float, sr: int, p: dict, cache: dict) -> np.ndarray:
    tail = {"pad": p.get("release", 0), "pluck": p.get("ring", 0), "bell": 1.0, "lead": 0.05, "bass": 0.04}[
        inst
    ]
    length = dur + tail
    if inst == "pluck":
        length = min(length, 4.6 / (p["decay"] * (f / 220) ** 0.3))  # stop once 40 dB down
    t = np.arange(int(length * sr)) / sr
    t32 = t.astype(np.float32)
    rel = np.clip((length - t32) / max(tail, 0.01), 0.0, 1.0)  # linear release avoids clicks
    if inst == "pluck":
        # Partial h decays at d1 * (1 + damp * (h - 1)): upper partials die first, as on a real string.
        # Both sin(h x) (Chebyshev recurrence) and the decays are built by multiplication, so the
        # additive sum costs a few float32 multiplies per partial instead of a sin and an exp.
        d1 = p["decay"] * (f / 220) ** 0.3
        x = _wrapped(f * t)
        two_cos, s_prev, s_cur = 2 * np.cos(x), np.zeros_like(x), np.sin(x)
        env, step = np.exp(np.float32(-d1) * t32), np.exp(np.float32(-d1 * p["damp"]) * t32)
        y = np.zeros_like(x)
        for h in _harmonics(f, sr, 8):
            y += np.float32(abs(np.sin(np.pi * h * p["pos"])) / h) * env * s_cur
            s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
            env *= step
        return y * np.minimum(1.0, t32 / 0.002) * rel
    if inst == "bell":
        index = min(p["index"], max(0.0, (0.45 * sr - f) / (p["ratio"] * f) - 1.5))  # no aliased sidebands
        mod = np.float32(index) * np.exp(-t32 / p["idecay"]) * np.sin(_wrapped(p["ratio"] * f * t))
        y = np.sin(_wrapped(f * t) + mod)
        return y * np.exp(-t32 / p["decay"]) * np.minimum(1.0, t32 / 0.003) * rel
    key = (inst, f)
    if key not in cache:
        cap = {"lead": 40, "pad": 12, "bass": 16}[inst]
        h = _harmonics(f, sr, cap, inst == "lead" and p["square"])
        if inst == "pad":
            amps = h ** -p["tilt"]
        elif inst == "lead":
            amps = np.exp(-(h - 1) * p["bright"]) / h
        else:
            amps = np.exp(-(h - 1) / max(p["bright"], 1e-3)) / h
        cache[key] = _wavetable(amps, h)
    table = cache[key]

    def osc(cycles: np.ndarray) -> np.ndarray:
        return table[(cycles * _TABLE).astype(np.int64) & (_TABLE - 1)]

    if inst == "pad":
        y = sum(osc(f * (1 + d) * t + o) for d, o in ((-p["detune"], 0.0), (0.0, 0.3), (p["detune"], 0.6)))
        return y * np.float32(1 / 3) * np.minimum(1.0, t32 / p["attack"]) * rel
    if inst == "lead":
        vib = f * p["vib"] * (1 - np.cos(2 * np.pi * p["rate"] * t32)) / (2 * np.pi * p["rate"])
        return osc(f * t + vib) * np.minimum(1.0, t32 / 0.01) * rel
    return osc(f * t) * np.exp(-t32 / p["decay"]) * np.minimum(1.0, t32 / 0.005) * rel


def _drum_kit(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, ...]:
    t = np.arange(int(0.4 * sr)) / sr
    f0, f1, tp = rng.uniform(110, 180), rng.uniform(42, 60), rng.uniform(0.02, 0.05)
    sweep = f1 * t + (f0 - f1) * tp * (1 - np.exp(-t / tp))  # exponential pitch drop
    kick = np.sin(2 * np.pi * sweep) * np.exp(-t / rng.uniform(0.1, 0.3))
    kick[: int(0.003 * sr)] += 0.3 * rng.standard_normal(int(0.003 * sr))
    noise = rng.standard_normal(t.size)
    snare = rng.uniform(0.5, 0.9) * noise * np.exp(-t / rng.uniform(0.05, 0.12)) + np.sin(
        2 * np.pi * rng.uniform(160, 240) * t
    ) * np.exp(-t / 0.05)
    hp = np.diff(rng.standard_normal(t.size + 2), 2)  # second difference = crude high-pass
    hat = hp * np.exp(-t / rng.uniform(0.015, 0.05))
    return tuple(x / np.abs(x).max() for x in (kick, snare, hat))


# ----------------------------------------------------------------------------- captions

_STYLE_WORDS = {
    "ambient": ("ambient", "atmospheric", "dreamy ambient"),
    "rock": ("rock", "guitar-driven rock", "indie rock"),
    "electronic": ("electronic", "dance", "club-style electronic"),
    "folk": ("folk", "acoustic folk", "folksy"),
    "jazz": ("jazz", "jazzy", "swinging jazz"),
    "chiptune": ("chiptune", "8-bit", "retro video-game"),
}
_INST_WORDS = {
    "pad": ("a soft synth pad", "lush pads", "an airy pad"),
    "pluck": ("plucked strings", "a picked guitar", "a plucky string part"),
    "bell": ("chiming bells", "bell tones", "a glassy bell"),
    "lead": ("a bright synth lead", "a buzzy lead", "a lead synth"),
    "bass": ("a driving bass line", "a deep bass", "a round bass line"),
    "drums": ("punchy drums", "a steady beat", "drums"),
}
_TEMPO_WORDS = {
    "fast": ("upbeat", "fast", "energetic"),
    "slow": ("slow", "relaxed", "unhurried"),
    "mid": ("mid-tempo", "moderately paced", "steady"),
}
_MOOD_WORDS = (("bright", "cheerful", "warm"), ("dark", "melancholic", "moody"))
_TEMPLATES = (
    "{A_tempo} {style} track in {key} with {inst} at {bpm} BPM.",
    "{A_mood} {style} piece in the key of {key}, featuring {inst}, around {bpm} beats per minute.",
    "{A_mood}, {tempo} {style} tune in {key} built on {inst} ({bpm} BPM).",
    "Featuring {inst}, this {tempo} {style} clip in {key} moves at {bpm} BPM.",
    "{bpm} BPM {style} music in {key}: {inst}.",
)


def _a(word: str) -> str:
    return ("An " if word[0] in "aeiou8" else "A ") + word


def _caption(rng: np.random.Generator, style: str, key: int, tempo: float, insts: list[str]) -> str:
    pick = lambda opts: str(rng.choice(opts))
    speed = "fast" if tempo >= FAST_BPM else "slow" if tempo < SLOW_BPM else "mid"
    words = [pick(_INST_WORDS[i]) for i in rng.permutation(insts)]
    if style == "jazz" and "bass" in insts:
        words = [w if w not in _INST_WORDS["bass"] else "a walking bass line" for w in words]
    inst = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    tempo_w, mood = pick(_TEMPO_WORDS[speed]), pick(_MOOD_WORDS[key % 2])
    return pick(_TEMPLATES).format(
        A_tempo=_a(tempo_w),
        A_mood=_a(mood),
        tempo=tempo_w,
        key=KEYS[key],
        inst=inst,
        style=pick(_STYLE_WORDS[style]),
        bpm=round(tempo),
    )


# ----------------------------------------------------------------------------- public API


def generate_clip(seed: int, index: int, *, sample_rate: int, duration_s: float) -> SynthClip:
    """Render clip ``index`` of the stream ``seed``; identical inputs give bit-identical output."""
    score_rng, timbre_rng, mix_rng, text_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(4)
    )
    rng = score_rng
    style_i = int(rng.integers(len(_STYLE_SPECS)))
    style = _STYLE_SPECS[style_i]
    tonic, mode = int(rng.integers(12)), int(rng.integers(2))
    tempo = float(rng.uniform(*style.tempo))
    insts = set(style.always) | {i for i, p in style.sometimes if rng.random() < p}
    if not insts - {"bass", "drums"}:  # something must carry the harmony
        insts.add(str(rng.choice([i for i, _ in style.sometimes if i not in ("bass", "drums")])))
    insts_sorted = [i for i in INSTRUMENTS if i in insts]

    n = round(duration_s * sample_rate)
    beat = 60.0 / tempo
    t0 = rng.uniform(0.0, 0.25) * min(beat, duration_s)  # the downbeat need not sit at sample 0
    n_beats = (duration_s - t0) / beat
    n_bars = max(1, int(np.ceil(n_beats / 4)))
    template = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    prog = [template[b % 4] for b in range(n_bars)]
    prog[-1] = 0  # open and close on the tonic so it is heard as the centre
    if n_bars >= 3 and rng.random() < 0.6:
        prog[-2] = 4
    swing = rng.uniform(*style.swing)

    def to_seconds(beats: np.ndarray) -> np.ndarray:
        whole, frac = np.floor(beats), beats - np.floor(beats)
        warped = np.where(frac < 0.5, frac * 2 * swing, swing + (frac - 0.5) * 2 * (1 - swing))
        return t0 + (whole + warped) * beat

    tracks, note_lens = {}, []
    for inst in insts_sorted:
        buf = np.zeros(n, np.float32)
        if inst == "drums":
            kit = _drum_kit(timbre_rng, sample_rate)
            for pattern, sound, level in zip(
                _DRUM_PATTERNS[style.drums], kit, (1.0, 0.8, 0.45), strict=False
            ):
                steps = [s for s, c in enumerate(pattern) if c == "x"]
                beats = np.array([b * 4 + s / 4 for b in range(n_bars) for s in steps])
                starts = to_seconds(beats) + rng.normal(0.0, 0.004, beats.size)
                for st, v in zip(starts, rng.uniform(0.7, 1.0, beats.size), strict=False):
                    _add(buf, st, level * v * sound, sample_rate)
        else:
            lo, hi = _REGISTERS[inst]
            base = int(rng.choice([m for m in range(lo, hi + 1) if m % 12 == tonic]))
            params, cache = _voice_params(timbre_rng, inst, style.name), {}
            notes = _score(rng, style, inst, mode, base, prog, n_beats)
            on = np.array([e[0] for e in notes])
            starts, ends = to_seconds(on), to_seconds(on + np.array([e[1] for e in notes]))
            for st, en, (_, _, m, v) in zip(starts, ends, notes, strict=False):
                if st < duration_s:
                    wave = _voice(inst, _midi_hz(m), en - st, sample_rate, params, cache)
                    _add(buf, st + rng.normal(0.0, 0.003), v * wave, sample_rate)
            note_lens += list(ends - starts)
        tracks[inst] = buf

    base_db = {"pad": -3.0, "pluck": 0.0, "bell": -3.0, "lead": -2.0, "bass": -1.0, "drums": 0.0}
    mix = np.zeros(n, np.float64)
    for inst, buf in tracks.items():
        gain = 10 ** ((base_db[inst] + mix_rng.uniform(-5.0, 1.0)) / 20)
        mix += gain * buf / (np.sqrt(np.mean(buf**2)) + 1e-9)
    target_db = mix_rng.uniform(-30.0, -8.0)
    mix *= 10 ** (target_db / 20) / (np.sqrt(np.mean(mix**2)) + 1e-12)
    mix += 10 ** (mix_rng.uniform(-75.0, -55.0) / 20) * mix_rng.standard_normal(n)
    knee = 0.8  # soft limiter: transparent below the knee, asymptotic to 1 above it
    over = np.abs(mix) > knee
    mix[over] = np.sign(mix[over]) * (knee + (1 - knee) * np.tanh((np.abs(mix[over]) - knee) / (1 - knee)))
    audio = np.clip(mix, -1.0, 1.0).astype(np.float32)

    level_db = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-20)
    tags = {TAGS.index(i) for i in insts_sorted}
    mean_len = float(np.mean(note_lens)) if note_lens else 0.0
    for name, active in (
        ("fast", tempo >= FAST_BPM),
        ("slow", tempo < SLOW_BPM),
        ("loud", level_db >= LOUD_DB),
        ("quiet", level_db <= QUIET_DB),
        ("percussive", "drums" in insts or "pluck" in insts),
        ("sustained", "pad" in insts or mean_len >= 1.0),
    ):
        if active:
            tags.add(TAGS.index(name))
    key = tonic * 2 + mode
    caption = _caption(text_rng, style.name, key, tempo, insts_sorted)
    return SynthClip(
        audio=audio, style=style_i, tags=tuple(sorted(tags)), key=key, tempo=tempo, caption=caption
    )


def _add(buf: np.ndarray, start_s: float, wave: np.ndarray, sr: int) -> None:
    i = round(start_s * sr)
    if i < 0:
        wave, i = wave[-i:], 0
    m = min(wave.size, buf.size - i)
    if m > 0:
        buf[i : i + m] += wave[:m]


def task_vocabularies() -> dict[str, dict]:
    """Label tasks carried by every synthetic clip, for the dataset manifest."""
    return {
        "style": {"kind": "single", "classes": list(STYLES)},
        "tags": {"kind": "multi", "classes": list(TAGS)},
        "key": {"kind": "single", "classes": list(KEYS)},
        "tempo": {"kind": "regression", "unit": "bpm", "range": list(TEMPO_RANGE)},
    }


def clip_labels(clip: SynthClip) -> dict:
    """JSON-serialisable labels of ``clip``."""
    return {
        "style": int(clip.style),
        "tags": [int(t) for t in clip.tags],
        "key": int(clip.key),
        "tempo": float(clip.tempo),
    }

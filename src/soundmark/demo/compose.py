"""Procedural music: each seed composes and renders a distinct piece.

The demo catalog must exist on a fresh machine without any music from the user, and tests need
audio whose every excerpt is unique (a looped bar would match itself at many offsets and tell us
nothing about the matcher). So each seed composes a whole piece: key, mode, tempo, swing and synth
voices are drawn once, while chords, bass, drums and melody are regenerated section by section and
phrase by phrase. Rendering is vectorised per voice (one gather per sample, no per-sample Python).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

# Bump when the generator's output changes, so build_demo_catalog re-renders stale files.
GENERATOR_VERSION = 1

PEAK = 10 ** (-1 / 20)  # -1 dBFS: headroom against inter-sample clipping in later resampling

_MODES: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
# Chord roots by scale degree; tonic, subdominant, dominant and relative minor dominate pop harmony.
_CHORD_WEIGHTS = np.array([3.0, 1.5, 1.0, 2.5, 2.5, 2.0, 0.4])
# One beat (four 16th steps) of melody rhythm: durations in steps, and how busy each cell is.
_BEAT_CELLS: tuple[tuple[int, ...], ...] = (
    (4,),
    (2, 2),
    (3, 1),
    (1, 3),
    (2, 1, 1),
    (1, 1, 2),
    (1, 2, 1),
    (1, 1, 1, 1),
)
# Melody steps in scale degrees: mostly stepwise, rising and falling about equally.
_MEL_STEPS = (-3, -2, -1, 0, 1, 2, 3)
_MEL_STEP_P = (0.05, 0.17, 0.28, 0.06, 0.27, 0.12, 0.05)
_KICK_PATTERNS = (
    (0, 8),
    (0, 4, 8, 12),
    (0, 6, 8),
    (0, 3, 8, 10),
    (0, 7, 10),
    (0, 8, 11, 14),
)
_BASS_PATTERNS = (
    (0, 4, 8, 12),
    (0, 2, 4, 6, 8, 10, 12, 14),
    (0, 3, 6, 8, 11, 14),
    (0, 6, 8, 14),
    (0, 8),
    (0, 2, 6, 8, 10, 14),
)

STEPS_PER_BAR = 16
BARS_PER_SECTION = 8
BARS_PER_PHRASE = 2


# --------------------------------------------------------------------------------------------------
# Score


@dataclass
class _Line:
    """Monophonic note list in seconds; a voice renders it with one timbre."""

    onset: list[float]
    gate: list[float]
    midi: list[float]
    vel: list[float]

    @classmethod
    def empty(cls) -> _Line:
        return cls([], [], [], [])

    def add(self, onset: float, gate: float, midi: float, vel: float) -> None:
        self.onset.append(onset)
        self.gate.append(gate)
        self.midi.append(midi)
        self.vel.append(vel)


@dataclass(frozen=True)
class _Timbre:
    kind: str  # "add" (additive) or "fm"
    attack: float
    decay: float
    sustain: float
    release: float
    harmonics: tuple[float, ...] = (1.0,)  # additive partial amplitudes
    brighten: float = 0.0  # >0: upper partials die faster than the fundamental (plucks, pianos)
    ratio_c: float = 1.0  # FM carrier ratio
    ratio_m: float = 1.0  # FM modulator ratio
    index: float = 0.0  # FM peak modulation index
    index_floor: float = 0.3  # FM index as a fraction of its peak once the envelope has decayed


def _additive(rng: np.random.Generator, n: int, tilt: float, odd_only: bool) -> tuple[float, ...]:
    h = np.arange(1, n + 1, dtype=float)
    amps = h**-tilt * rng.uniform(0.6, 1.0, n)
    if odd_only:
        amps[1::2] *= 0.08
    return tuple(float(a) for a in amps / amps.sum())


def _lead_timbre(rng: np.random.Generator) -> _Timbre:
    kind = int(rng.integers(5))
    if kind == 0:  # bright saw-ish lead
        return _Timbre("add", 0.01, 0.25, 0.6, 0.06, _additive(rng, 8, 1.0, False))
    if kind == 1:  # hollow clarinet-ish
        return _Timbre("add", 0.03, 0.3, 0.8, 0.08, _additive(rng, 7, 0.9, True))
    if kind == 2:  # pluck
        return _Timbre("add", 0.004, 0.35, 0.0, 0.05, _additive(rng, 8, 0.8, False), brighten=1.5)
    if kind == 3:  # FM bell
        return _Timbre(
            "fm", 0.003, 0.6, 0.1, 0.15, ratio_c=1.0, ratio_m=float(rng.choice([3.5, 1.4, 2.0])),
            index=float(rng.uniform(1.5, 3.0)), index_floor=0.2,
        )  # fmt: skip
    return _Timbre(  # FM brass
        "fm", 0.04, 0.2, 0.7, 0.08, ratio_c=1.0, ratio_m=1.0,
        index=float(rng.uniform(2.0, 4.0)), index_floor=0.5,
    )  # fmt: skip


def _bass_timbre(rng: np.random.Generator) -> _Timbre:
    kind = int(rng.integers(3))
    if kind == 0:  # round sub bass
        return _Timbre("add", 0.005, 0.3, 0.7, 0.05, (0.8, 0.3, 0.1))
    if kind == 1:  # picked bass
        return _Timbre("add", 0.003, 0.4, 0.2, 0.05, _additive(rng, 7, 1.2, False), brighten=1.0)
    return _Timbre("fm", 0.005, 0.25, 0.5, 0.05, ratio_c=1.0, ratio_m=1.0, index=float(rng.uniform(1.0, 2.5)))


def _pad_timbre(rng: np.random.Generator) -> _Timbre:
    kind = int(rng.integers(3))
    if kind == 0:  # soft string pad
        return _Timbre("add", 0.3, 0.5, 0.8, 0.25, _additive(rng, 5, 1.4, False))
    if kind == 1:  # electric piano
        return _Timbre(
            "fm", 0.005, 0.9, 0.2, 0.2, ratio_c=1.0, ratio_m=14.0 if rng.random() < 0.3 else 1.0,
            index=float(rng.uniform(0.8, 1.6)), index_floor=0.1,
        )  # fmt: skip
    return _Timbre("add", 0.08, 0.4, 0.6, 0.2, _additive(rng, 4, 1.8, True))  # organ-ish


@dataclass
class _Score:
    bpm: float
    duration: float
    lead: _Line
    bass: _Line
    pad: list[_Line]
    arp: _Line
    drums: dict[str, list[tuple[float, float]]]  # drum name -> (onset s, velocity)
    lead_timbre: _Timbre
    bass_timbre: _Timbre
    pad_timbre: _Timbre
    arp_timbre: _Timbre
    kit: dict[str, float]  # drum synthesis parameters


def _pitch_of(root: int, scale: tuple[int, ...], degree: int) -> int:
    return root + scale[degree % 7] + 12 * (degree // 7)


def _compose(seed: int, seconds: float) -> _Score:
    """Draw the piece's global character, then write it bar by bar until ``seconds`` is covered."""
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(12))
    mode = str(rng.choice(list(_MODES)))
    scale = _MODES[mode]
    bpm = float(np.round(rng.uniform(80.0, 160.0), 1))
    swing = float(rng.choice([0.0, 0.0, 0.0, 0.12, 0.25]))
    sevenths = bool(rng.random() < 0.4)
    pentatonic = bool(rng.random() < 0.3) and mode in ("ionian", "aeolian", "mixolydian", "dorian")
    lead_center = int(rng.integers(67, 77))
    step_s = 60.0 / bpm / 4
    # Each part has its own stream, so e.g. a busier melody never changes the drums.
    r_chord, r_mel, r_bass, r_drum, r_arp, r_tim = (np.random.default_rng(s) for s in rng.spawn(6))

    def t_of(step: float) -> float:  # swing delays every off-beat 16th
        return (step + swing * (int(step) % 2)) * step_s

    mel_pcs = sorted({(tonic + scale[d]) % 12 for d in ((0, 1, 2, 4, 5) if pentatonic else range(7))})
    n_bars = int(np.ceil(seconds / (STEPS_PER_BAR * step_s))) + 1
    lead, bass, arp = _Line.empty(), _Line.empty(), _Line.empty()
    pad = [_Line.empty() for _ in range(4 if sevenths else 3)]
    drums: dict[str, list[tuple[float, float]]] = {"kick": [], "snare": [], "hat": [], "open": []}
    mel_idx: int | None = None
    prev_chord = 0
    phrase_rest = False

    for section_bar in range(0, n_bars, BARS_PER_SECTION):
        # --- section-level choices ---------------------------------------------------------------
        harmonic_rhythm = int(r_chord.choice([1, 1, 2]))  # bars per chord
        chords = []
        for i in range(BARS_PER_SECTION // harmonic_rhythm):
            if section_bar == 0 and i == 0:
                deg = 0
            else:
                w = _CHORD_WEIGHTS.copy()
                w[prev_chord] = 0.0
                deg = int(r_chord.choice(7, p=w / w.sum()))
            chords.extend([deg] * harmonic_rhythm)
            prev_chord = deg
        pad_style = str(r_chord.choice(["hold", "hold", "stab", "offbeat"]))
        bass_pattern = _BASS_PATTERNS[int(r_bass.integers(len(_BASS_PATTERNS)))]
        kick_pattern = _KICK_PATTERNS[int(r_drum.integers(len(_KICK_PATTERNS)))]
        hat_every = int(r_drum.choice([1, 2, 2, 4]))
        drums_on = section_bar > 0 or r_drum.random() < 0.5
        arp_on = r_arp.random() < 0.5
        arp_rate = int(r_arp.choice([1, 2]))
        arp_shape = r_arp.permutation(4)
        density = r_mel.uniform(0.3, 1.0)  # how busy the melody is in this section
        center = lead_center + int(r_mel.integers(-3, 4))
        pitches = np.array([p for p in range(center - 10, center + 11) if p % 12 in mel_pcs])
        if mel_idx is None:
            mel_idx = len(pitches) // 2
        mel_idx = int(np.clip(mel_idx, 0, len(pitches) - 1))
        cell_p = np.array([len(c) for c in _BEAT_CELLS], dtype=float) ** (2.5 * density - 0.5)
        cell_p /= cell_p.sum()

        for b in range(BARS_PER_SECTION):
            bar = section_bar + b
            if bar >= n_bars:
                break
            s0 = bar * STEPS_PER_BAR
            deg = chords[b]
            chord_degs = [deg, deg + 2, deg + 4] + ([deg + 6] if sevenths else [])
            chord_pcs = {(tonic + scale[d % 7]) % 12 for d in chord_degs}
            root_pc = (tonic + scale[deg % 7]) % 12

            # --- pads: close voicing around middle C -------------------------------------------
            voicing = sorted(54 + (_pitch_of(tonic, scale, d) - 54) % 12 for d in chord_degs)
            if pad_style == "hold":
                hits = [(0, 16 * harmonic_rhythm)] if b % harmonic_rhythm == 0 else []
            elif pad_style == "stab":
                hits = [(s, 2) for s in (0, 6, 10) if r_chord.random() < 0.85]
            else:
                hits = [(s, 2) for s in (2, 6, 10, 14)]
            for start, length in hits:
                for line, p in zip(pad, voicing, strict=True):
                    line.add(t_of(s0 + start), (length - 0.3) * step_s, p, 0.6 + 0.15 * r_chord.random())

            # --- arpeggio over the chord, an octave above the pad --------------------------------
            if arp_on:
                for k, s in enumerate(range(0, 16, arp_rate)):
                    p = voicing[arp_shape[k % 4] % len(voicing)] + 12
                    arp.add(t_of(s0 + s), 0.7 * arp_rate * step_s, p, 0.5 + 0.3 * r_arp.random())

            # --- bass ----------------------------------------------------------------------------
            root = 36 + (root_pc - 36) % 12
            for i, s in enumerate(bass_pattern):
                p = root
                roll = r_bass.random()
                if i > 0 and roll < 0.15:
                    p = root + 7
                elif i > 0 and roll < 0.22:
                    p = root + 12
                nxt = bass_pattern[i + 1] if i + 1 < len(bass_pattern) else 16
                vel = (0.95 if s % 4 == 0 else 0.75) * r_bass.uniform(0.85, 1.0)
                bass.add(t_of(s0 + s), 0.8 * (nxt - s) * step_s, p, vel)

            # --- drums: velocities drawn per hit, a fill closes each section ----------------------
            if drums_on:
                fill = b == BARS_PER_SECTION - 1
                for s in kick_pattern:
                    drums["kick"].append((t_of(s0 + s), r_drum.uniform(0.85, 1.0)))
                if r_drum.random() < 0.25:
                    drums["kick"].append((t_of(s0 + int(r_drum.choice([7, 11, 14, 15]))), 0.6))
                for s in (4, 12) if not fill else (4, 10, 12, 13, 14, 15):
                    drums["snare"].append((t_of(s0 + s), r_drum.uniform(0.75, 1.0)))
                for s in range(0, 16, hat_every):
                    if s in (6, 14) and r_drum.random() < 0.2:
                        drums["open"].append((t_of(s0 + s), r_drum.uniform(0.5, 0.8)))
                    elif r_drum.random() < 0.93:
                        accent = 1.0 if s % 4 == 0 else 0.7
                        drums["hat"].append((t_of(s0 + s), accent * r_drum.uniform(0.5, 1.0)))

            # --- melody: a fresh phrase every two bars, random walk on the scale ------------------
            if bar % BARS_PER_PHRASE == 0:
                phrase_rest = r_mel.random() < 0.15  # an occasional breath between phrases
            pos = 0
            while pos < STEPS_PER_BAR:
                cell = _BEAT_CELLS[int(r_mel.choice(len(_BEAT_CELLS), p=cell_p))]
                for d in cell:
                    s = pos
                    pos += d
                    if phrase_rest and bar % BARS_PER_PHRASE == 1 and s >= 8:
                        continue
                    if r_mel.random() < 0.12:  # rest
                        continue
                    step = int(r_mel.choice(_MEL_STEPS, p=_MEL_STEP_P))
                    if r_mel.random() < 0.06:
                        step = int(r_mel.choice([-5, -4, 4, 5]))
                    mel_idx += step
                    # Keep the walk in range by reflecting off the edges.
                    if mel_idx < 0:
                        mel_idx = -mel_idx
                    if mel_idx >= len(pitches):
                        mel_idx = 2 * (len(pitches) - 1) - mel_idx
                    mel_idx = int(np.clip(mel_idx, 0, len(pitches) - 1))
                    if s % 4 == 0 and r_mel.random() < 0.6:  # strong beats lean on chord tones
                        tones = [i for i, p in enumerate(pitches) if p % 12 in chord_pcs]
                        here = mel_idx
                        mel_idx = min(tones, key=lambda i: abs(i - here))
                    vel = (1.0 if s % 4 == 0 else 0.8) * r_mel.uniform(0.8, 1.0)
                    legato = r_mel.uniform(0.6, 0.95)
                    jitter = r_mel.normal(0.0, 0.004)
                    onset = max(0.0, t_of(s0 + s) + jitter)
                    lead.add(onset, legato * d * step_s, float(pitches[mel_idx]), vel)

    kit = {
        "kick_f0": float(r_tim.uniform(110, 180)),
        "kick_f1": float(r_tim.uniform(42, 60)),
        "kick_decay": float(r_tim.uniform(0.15, 0.35)),
        "snare_tone": float(r_tim.uniform(160, 240)),
        "snare_lo": float(r_tim.uniform(1200, 2500)),
        "snare_decay": float(r_tim.uniform(0.08, 0.18)),
        "hat_cut": float(r_tim.uniform(6000, 8000)),
        "noise_seed": int(r_tim.integers(2**31)),
    }
    return _Score(
        bpm=bpm,
        duration=seconds,
        lead=lead,
        bass=bass,
        pad=pad,
        arp=arp,
        drums=drums,
        lead_timbre=_lead_timbre(r_tim),
        bass_timbre=_bass_timbre(r_tim),
        pad_timbre=_pad_timbre(r_tim),
        arp_timbre=_Timbre("add", 0.003, 0.18, 0.0, 0.03, _additive(r_tim, 5, 1.3, False), brighten=1.0),
        kit=kit,
    )


# --------------------------------------------------------------------------------------------------
# Rendering


def _render_line(line: _Line, timbre: _Timbre, n: int, sr: int) -> np.ndarray:
    """All notes of a monophonic line in one pass: each sample looks up the note it belongs to."""
    if not line.onset or n == 0:
        return np.zeros(n, dtype=np.float32)
    # A silent note at 0 covers the time before the first onset.
    on = np.concatenate(([0], np.round(np.asarray(line.onset) * sr).astype(np.int64)))
    order = np.argsort(on, kind="stable")
    on = np.minimum(on[order], n)
    gate = np.concatenate(([0.0], line.gate))[order]
    freq = 440.0 * 2.0 ** ((np.concatenate(([69.0], line.midi))[order] - 69.0) / 12.0)
    vel = np.concatenate(([0.0], line.vel))[order]
    slot = np.diff(np.append(on, n)) / sr
    gate = np.minimum(gate, slot)
    # The release must finish before the next onset, or the phase reset would click.
    release = np.clip(slot - gate, 1e-4, timbre.release)

    idx = np.repeat(np.arange(len(on)), np.diff(np.append(on, n)))
    tau = (np.arange(n) - on[idx]).astype(np.float32) / np.float32(sr)
    a, d, s = np.float32(timbre.attack), np.float32(timbre.decay), np.float32(timbre.sustain)
    g = gate.astype(np.float32)[idx]
    t_on = np.minimum(tau, g)
    env = np.where(t_on < a, t_on / a, s + (1 - s) * np.exp(-(t_on - a) / d))
    env *= np.clip(1 - (tau - g) / release.astype(np.float32)[idx], 0, 1)

    # Phase in cycles, wrapped while still float64 so long notes keep an exact pitch.
    cycles = freq[idx] * tau.astype(np.float64)
    theta = ((cycles - np.floor(cycles)) * (2 * np.pi)).astype(np.float32)
    if timbre.kind == "fm":
        index = np.float32(timbre.index) * (timbre.index_floor + (1 - timbre.index_floor) * env)
        mod = np.sin(np.float32(timbre.ratio_m) * theta)
        out = np.sin(np.float32(timbre.ratio_c) * theta + index * mod)
    else:
        # Partials by the Chebyshev recurrence sin(kθ) = 2cosθ·sin((k-1)θ) − sin((k-2)θ): one sin,
        # one cos, then multiplies. Partials that would alias above 0.45·sr are dropped.
        n_h = max(1, min(len(timbre.harmonics), int(0.45 * sr / freq[1:].max())))
        s_prev = np.zeros(n, dtype=np.float32)
        s_cur = np.sin(theta)
        c2 = 2 * np.cos(theta)
        out = np.float32(timbre.harmonics[0]) * s_cur
        fade = env ** np.float32(timbre.brighten) if timbre.brighten else None
        weight = np.ones(n, dtype=np.float32) if fade is not None else None
        for amp in timbre.harmonics[1:n_h]:
            s_prev, s_cur = s_cur, c2 * s_cur - s_prev
            if weight is not None and fade is not None:
                weight *= fade
                out += np.float32(amp) * weight * s_cur
            else:
                out += np.float32(amp) * s_cur
    out *= env * vel.astype(np.float32)[idx]
    return out.astype(np.float32)


def _drum_templates(kit: dict[str, float], sr: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(int(kit["noise_seed"]))
    nyq = 0.45 * sr

    def noise(seconds: float) -> tuple[np.ndarray, np.ndarray]:
        m = int(seconds * sr)
        return np.arange(m) / sr, rng.standard_normal(m)

    t, _ = noise(0.5)
    f0, f1, tk = kit["kick_f0"], kit["kick_f1"], 0.04
    # A falling pitch (f0 → f1) integrated analytically into phase: the classic 808-style kick.
    kick = np.sin(2 * np.pi * (f1 * t + (f0 - f1) * tk * (1 - np.exp(-t / tk))))
    kick *= np.exp(-t / kit["kick_decay"])
    kick[: int(0.003 * sr)] += 0.3 * rng.standard_normal(int(0.003 * sr))

    t, w = noise(0.35)
    band = scipy.signal.butter(2, [min(kit["snare_lo"], nyq / 2), nyq], "bandpass", fs=sr, output="sos")
    rattle = scipy.signal.sosfilt(band, w)
    rattle /= np.abs(rattle).max()
    snare = 0.8 * rattle * np.exp(-t / kit["snare_decay"])
    snare += 0.6 * np.sin(2 * np.pi * kit["snare_tone"] * t) * np.exp(-t / 0.05)

    hp = scipy.signal.butter(2, min(kit["hat_cut"], 0.8 * nyq), "highpass", fs=sr, output="sos")
    t, w = noise(0.4)
    hiss = scipy.signal.sosfilt(hp, w)
    hiss /= np.abs(hiss).max()
    hat = hiss[: int(0.12 * sr)] * np.exp(-t[: int(0.12 * sr)] / 0.025)
    open_hat = hiss * np.exp(-t / 0.15)
    for x in (kick, snare, hat, open_hat):  # a short fade so the tail never ends on a step
        m = min(len(x), int(0.01 * sr))
        x[-m:] *= np.linspace(1, 0, m)
    return {"kick": kick, "snare": snare, "hat": hat, "open": open_hat}


def _render_drums(score: _Score, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float64)
    templates = _drum_templates(score.kit, sr)
    gains = {"kick": 1.0, "snare": 0.55, "hat": 0.18, "open": 0.15}
    for name, hits in score.drums.items():
        shot = gains[name] * templates[name]
        # A few hundred hits: adding each one-shot in place beats an FFT convolution of the piece.
        for onset, vel in hits:
            a = round(onset * sr)
            if a < n:
                m = min(len(shot), n - a)
                out[a : a + m] += vel * shot[:m]
    return out.astype(np.float32)


def _normalise(x: np.ndarray, peak: float = PEAK) -> np.ndarray:
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    if m == 0.0:
        return np.zeros(len(x), dtype=np.float32)
    return (x * (peak / m)).astype(np.float32)


def compose_piece(seed: int, seconds: float, sample_rate: int = 22050) -> np.ndarray:
    """A piece of music determined entirely by ``seed``: float32 mono peaking at about -1 dBFS.

    The score is written bar by bar with a random stream per part, so a shorter render plays the
    same notes as the start of a longer one (levels differ slightly: the mix is normalised).
    """
    if seconds <= 0:
        return np.zeros(0, dtype=np.float32)
    sr = int(sample_rate)
    n = round(seconds * sr)
    score = _compose(seed, seconds)
    mix = 0.32 * _render_line(score.lead, score.lead_timbre, n, sr)
    mix += 0.40 * _render_line(score.bass, score.bass_timbre, n, sr)
    mix += 0.14 * _render_line(score.arp, score.arp_timbre, n, sr)
    for line in score.pad:
        mix += 0.09 * _render_line(line, score.pad_timbre, n, sr)
    mix += 0.5 * _render_drums(score, n, sr)
    # Gentle saturation evens out drum transients against the tonal parts, as a mastering bus would.
    mix = np.tanh(1.5 * mix / max(float(np.percentile(np.abs(mix), 99.5)), 1e-9))
    fade = min(n // 2, int(0.02 * sr))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        mix[:fade] *= ramp
        mix[-fade:] *= ramp[::-1]
    return _normalise(mix)


# --------------------------------------------------------------------------------------------------
# Phone in a room

"""Synthetic speech: sentences over the closed vocabulary, spoken by many synthetic voices.

Training voices: espeak-ng's English accents x its voice variants, and flite's `awb` and `rms`
with moved pitch and speaking rate. NEVER festival, nor flite's `kal`, `kal16` or `slt`: they are
the same speakers as festival's `kal_diphone`, `ked_diphone` and `cmu_us_slt_arctic_hts`, which
are the unseen-voice test set (TEST_VOICES). Each utterance then goes through what a camera or an
archive does to sound: a speed change (formants and pitch move together, as between speakers), a
source sample rate of 8/16/22.05/44.1/48 kHz, and for a quarter a round trip through AAC, G.711
mu-law/A-law, Opus or MP3 (FFmpeg's encoders and decoder), back to 16 kHz mono. Gain, noise floors and silences (including exact digital zeros) are added at
training time (train.py), so every epoch hears them differently.
"""
import os
import random
import subprocess
import tempfile

import numpy as np

import vocab

SAMPLE_RATE = 16000

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt",
                   "klatt2", "klatt3", "klatt4", "klatt6", "Alex", "Andy", "annie", "aunty", "belinda",
                   "benjamin", "boris", "david", "ed", "edward", "Gene", "grandma", "grandpa", "john",
                   "linda", "max", "michel", "Mike", "norbert", "paul", "robert", "steph", "travis",
                   "victor", "Annie", "shelby", "quincy", "rob", "sandro", "Tweaky", "Storm", "zac"]
FLITE_VOICES = ["awb", "rms"]
# festival voices (text2wave -eval "(voice_NAME)"): never trained on.
TEST_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
SOURCE_RATES = [8000, 16000, 22050, 44100, 48000]
CODECS = {  # name: (ffmpeg encoder args, container, allowed source rates)
    "aac": (["-c:a", "aac", "-b:a", "64k"], "adts", None),
    "mulaw": (["-c:a", "pcm_mulaw"], "wav", [8000]),
    "alaw": (["-c:a", "pcm_alaw"], "wav", [8000]),
    "opus": (["-c:a", "libopus", "-b:a", "24k"], "ogg", [8000, 16000, 48000]),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k"], "mp3", [8000, 16000, 22050, 44100, 48000]),
}

TEMPLATES = [
    ["the", "{colour}", "{noun}", "is", "{verb}"],
    ["{noun}", "{verb}", "on", "the", "{position}"],
    ["a", "{size}", "{colour}", "{shape}", "on", "the", "{position}"],
    ["{digit}", "{digit}", "{digit}", "{digit}"],
    ["{verb}", "the", "{noun}", "near", "the", "{noun}"],
    ["{digit}", "{colour}", "{shape}", "at", "the", "{position}"],
    ["the", "{noun}", "{verb}", "to", "the", "{position}", "of", "the", "{noun}"],
    ["{digit}", "{noun}", "{verb}", "in", "the", "{position}"],
]
SLOTS = {"colour": vocab.COLOURS, "noun": vocab.NOUNS, "verb": vocab.VERBS, "position": vocab.POSITIONS,
         "size": vocab.SIZES, "shape": vocab.SHAPES, "digit": vocab.DIGITS}


def sentence(rng):
    """1-12 words: half uniformly random (no grammar to lean on), half from templates."""
    if rng.random() < 0.5:
        return [rng.choice(vocab.SPEECH_WORDS) for _ in range(rng.randint(1, 12))]
    words = []
    while not words or (len(words) < 12 and rng.random() < 0.3):
        words += [rng.choice(SLOTS[w[1:-1]]) if w.startswith("{") else w for w in rng.choice(TEMPLATES)]
    return words[:12]


def espeak_voices():
    return [a + (f"+{v}" if v else "") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]


def synthesize(voice, words, rate_wpm, pitch, tmpdir):
    """WAV bytes of `words` spoken by a training voice ("espeak:<name>" or "flite:<name>")."""
    text = " ".join(words)
    engine, name = voice.split(":", 1)
    if engine == "espeak":
        return subprocess.run(["espeak-ng", "-v", name, "-s", str(rate_wpm), "-p", str(pitch), "--stdout", text],
                              check=True, capture_output=True).stdout
    if engine == "flite":
        out = os.path.join(tmpdir, "f.wav")
        # flite's own rate is ~170 wpm; pitch 0-99 maps onto a mean F0 of 70-260 Hz.
        subprocess.run(["flite", "-voice", name, "-t", text, "-o", out,
                        "--setf", f"duration_stretch={170.0 / rate_wpm:.3f}",
                        "--setf", f"int_f0_target_mean={70 + pitch * 1.9:.0f}"], check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()
    raise ValueError(voice)


def channel(wav, speed, source_rate, codec, tmpdir):
    """The wav through a speed change, a source sample rate and a codec, as 16 kHz mono int16.

    Speed and rate changes run in sox (starts in ~10 ms, against FFmpeg's ~160 ms); the codec
    round trips in FFmpeg, whose encoders are those a camera's stream is decoded from."""
    speed_fx = ["speed", f"{speed:.4f}"] if speed != 1.0 else []
    sox = ["sox", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1"]
    if codec is None:
        pcm = subprocess.run(sox + ["-"] + speed_fx + ["rate", str(source_rate), "rate", str(SAMPLE_RATE)],
                             input=wav, check=True, capture_output=True).stdout
        return np.frombuffer(pcm, dtype="<i2").copy()
    src = subprocess.run(sox + ["-r", str(source_rate), "-"] + speed_fx + ["rate", str(source_rate)], input=wav,
                         check=True, capture_output=True).stdout
    args, fmt, _ = CODECS[codec]
    enc = os.path.join(tmpdir, "c." + fmt)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "s16le", "-ar", str(source_rate), "-ac", "1",
                    "-i", "pipe:0"] + args + ["-f", fmt, "-y", enc], input=src, check=True, capture_output=True)
    pcm = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", enc, "-ac", "1", "-ar", str(SAMPLE_RATE),
                          "-f", "s16le", "pipe:1"], check=True, capture_output=True).stdout
    return np.frombuffer(pcm, dtype="<i2").copy()


def training_utterance(seed):
    """(int16 samples at 16 kHz, words, description) for utterance `seed`: a pure function of it."""
    rng = random.Random(seed)
    words = sentence(rng)
    voice = (f"flite:{rng.choice(FLITE_VOICES)}" if rng.random() < 0.3 else f"espeak:{rng.choice(espeak_voices())}")
    rate = rng.randint(100, 230)
    pitch = rng.randint(0, 99)
    speed = 1.0 if rng.random() < 0.3 else rng.uniform(0.85, 1.18)
    codec = rng.choice(list(CODECS)) if rng.random() < 0.25 else None
    rates = CODECS[codec][2] if codec else None
    source_rate = rng.choice(rates or SOURCE_RATES)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        samples = channel(synthesize(voice, words, rate, pitch, tmp), speed, source_rate, codec, tmp)
    return samples, words, f"{voice} {rate}wpm p{pitch} x{speed:.2f} {source_rate}Hz {codec or 'pcm'}"


def test_utterances(voice, sentences, tmpdir):
    """Each sentence (a word list) spoken by festival voice `voice` (never trained on), at its own
    rate, as 16 kHz int16. One festival process for all: its start-up costs ~1.5 s."""
    script = [f"(voice_{voice})"]
    for i, words in enumerate(sentences):
        script.append(f'(utt.save.wave (utt.synth (Utterance Text "{" ".join(words)}")) '
                      f'"{os.path.join(tmpdir, f"{i}.wav")}" \'riff)')
    path = os.path.join(tmpdir, "batch.scm")
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["festival", "--batch", path], check=True, capture_output=True)
    out = []
    for i in range(len(sentences)):
        with open(os.path.join(tmpdir, f"{i}.wav"), "rb") as f:
            out.append(channel(f.read(), 1.0, SAMPLE_RATE, None, tmpdir))
    return out


CHUNK = 2000  # utterances per cache file: a killed build resumes at the first missing chunk


def build_cache(directory, count, seed, workers=2):
    """Synthesizes utterances 0..count-1 of `seed` into `directory`/speech-NNN.npz, CHUNK per file
    (samples concatenated, offsets, words, description); chunks already there are kept."""
    import multiprocessing
    os.makedirs(directory, exist_ok=True)
    with multiprocessing.Pool(workers) as pool:
        for c in range((count + CHUNK - 1) // CHUNK):
            path = os.path.join(directory, f"speech-{c:03d}.npz")
            if os.path.exists(path):
                continue
            seeds = [seed * 1_000_003 + i for i in range(c * CHUNK, min(count, (c + 1) * CHUNK))]
            results = pool.map(training_utterance, seeds, chunksize=8)
            samples = np.concatenate([r[0] for r in results])
            offsets = np.cumsum([0] + [len(r[0]) for r in results])
            tmp = path + ".tmp.npz"
            np.savez(tmp, samples=samples, offsets=offsets, words=np.array([" ".join(r[1]) for r in results]),
                     desc=np.array([r[2] for r in results]))
            os.replace(tmp, path)
            print(f"  speech cache: {min(count, (c + 1) * CHUNK)}/{count} utterances", flush=True)


def load_cache(directory, count):
    """[(int16 samples, words, description)] of the first `count` cached utterances."""
    out = []
    for c in range((count + CHUNK - 1) // CHUNK):
        z = np.load(os.path.join(directory, f"speech-{c:03d}.npz"))
        samples, offsets = z["samples"], z["offsets"]  # NpzFile reads an array at each access
        for i, (w, d) in enumerate(zip(z["words"], z["desc"])):
            out.append((samples[offsets[i]:offsets[i + 1]], str(w).split(" "), str(d)))
    return out[:count]

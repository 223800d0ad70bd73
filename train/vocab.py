"""The closed vocabulary of the trained demo model, its prompts and its tokenizer.

One place for every word the model can hear or say (model card: models/README.md), the exact
prompts rawflow sends (cli/cmd_transcribe.cpp, cli/cmd_describe.cpp, pipeline/config.cpp's
default_prompt), and a BPE tokenizer built so that every vocabulary and prompt word is one token.

The tokenizer has rawflow's synthetic-vocabulary layout (model/synth/synth.cpp synth_vocab): Gemma 4's
special tokens, newline runs, 256 byte tokens, `▁`, single characters, then merge products. Merges
are chains that build each word left to right; every `▁word` chain ranks before every bare-word
chain, so a word after a space always becomes `▁word` and a word at the start of a segment
(the answer after `<channel|>`) becomes `word`. Anything else falls back to characters and bytes,
so any prompt tokenizes. tests/train/test_tokenizer_agrees.sh checks this encoder against rawflow's.
"""
import json
import re

SPACE = "\u2581"

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SCENE_COLOURS = ["red", "green", "blue", "yellow", "orange", "purple"]
COLOURS = SCENE_COLOURS + ["white", "black"]
SHAPES = ["circle", "square", "triangle"]
SIZES = ["small", "large"]
POSITIONS = ["left", "center", "right", "top", "bottom", "middle"]
NOUNS = ["car", "person", "truck", "dog", "door", "window", "camera", "light", "bike", "bus"]
VERBS = ["stop", "go", "open", "close", "moving", "parked", "enters", "leaves", "turn", "wait"]
FUNCTION = ["the", "a", "and", "on", "at", "in", "is", "to", "of", "near"]
CAPTION_EXTRA = ["shape", "shapes"]

# Everything the speech side hears: 61 words.
SPEECH_WORDS = DIGITS + COLOURS + SHAPES + SIZES + POSITIONS + NOUNS + VERBS + FUNCTION + CAPTION_EXTRA

# Prompts exactly as rawflow's commands and pipeline tasks send them.
TRANSCRIBE_PROMPTS = [
    "Transcribe this audio.",  # pipeline transcribe task, no language set
    "Transcribe the following speech segment in English into English text.",  # CLI, pipeline with language
]
DESCRIBE_PROMPTS = [
    "Describe this image in one or two sentences.",  # pipeline describe task, one frame
    "Describe this image in detail.",  # rawflow describe
]

SPECIALS = [  # model/synth/synth.cpp kSpecials, same order and types
    ("<pad>", "control"), ("<eos>", "control"), ("<bos>", "control"), ("<unk>", "control"),
    ("<mask>", "control"), ("<|turn>", "control"), ("<turn|>", "control"),
    ("<|channel>", "user"), ("<channel|>", "user"), ("<|think|>", "control"),
    ("<|tool>", "control"), ("<tool|>", "control"), ("<|tool_call>", "user"),
    ("<tool_call|>", "user"), ("<|tool_response>", "user"), ("<tool_response|>", "user"),
    ('<|"|>', "user"), ("<|image>", "control"), ("<image|>", "control"), ("<|image|>", "control"),
    ("<|audio>", "control"), ("<audio|>", "control"), ("<|audio|>", "control"), ("<|video|>", "control"),
]
CHARS = ([chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
         + [chr(c) for c in range(ord("0"), ord("9") + 1)] + list(".,!?;:'\"-()/"))


def prompt_words():
    words = set()
    for p in TRANSCRIBE_PROMPTS + DESCRIBE_PROMPTS + ["model", "user", "system", "thought"]:
        words.update(re.findall(r"[A-Za-z]+", p))
    return sorted(words)


class Tokenizer:
    def __init__(self):
        self.tokens, self.types = [], []
        self.index = {}
        for text, kind in SPECIALS:
            self._add(text, kind)
        for nl in ("\n", "\n\n", "\n\n\n"):
            self._add(nl, "normal")
        for b in range(256):
            self._add(f"<0x{b:02X}>", "byte")
        self._add(SPACE, "normal")
        for c in CHARS:
            self._add(c, "normal")
        words = sorted(set(SPEECH_WORDS) | set(prompt_words()))
        self.merges = []
        # ▁word chains first (ranks below every bare chain), then bare words.
        for prefix in (SPACE, ""):
            for w in words:
                self._chain(prefix + w)
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(self.merges)}
        self.special_strings = sorted((t for t, k in SPECIALS), key=len, reverse=True)

    def _add(self, text, kind):
        if text in self.index:
            return
        self.index[text] = len(self.tokens)
        self.tokens.append(text)
        self.types.append(kind)

    def _chain(self, word):
        piece = word[0]
        for ch in word[1:]:
            merge = f"{piece} {ch}"
            if piece + ch not in self.index:
                self.merges.append(merge)
                self._add(piece + ch, "normal")
            piece += ch

    def id(self, text):
        return self.index[text]

    def _bpe(self, chunk):
        parts = list(chunk)
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        out = []
        for p in parts:
            if p in self.index:
                out.append(self.index[p])
            else:
                out.extend(self.index[f"<0x{b:02X}>"] for b in p.encode("utf-8"))
        return out

    def _encode_text(self, text):
        out = []
        for run in re.findall(r"\n+|[^\n]+", text.replace(" ", SPACE)):
            if run[0] == "\n" and run in self.index:  # a newline run that is a token is emitted whole
                out.append(self.index[run])
            else:
                out.extend(self._bpe(run))
        return out

    def encode(self, text):
        """Ids of `text` with special tokens matched whole (rawflow's parse_special = true)."""
        pattern = "|".join(re.escape(s) for s in self.special_strings)
        out, pos = [], 0
        for m in re.finditer(pattern, text):
            out.extend(self._encode_text(text[pos:m.start()]))
            out.append(self.index[m.group(0)])
            pos = m.end()
        out.extend(self._encode_text(text[pos:]))
        return out

    def decode(self, ids):
        data = bytearray()
        for i in ids:
            t = self.tokens[i]
            if self.types[i] == "byte":
                data.append(int(t[3:5], 16))
            else:
                data.extend(t.replace(SPACE, " ").encode("utf-8"))
        return data.decode("utf-8", errors="replace")

    def __len__(self):
        return len(self.tokens)

    def tokenizer_json(self):
        """The Hugging Face tokenizer.json, in the form model/synth/synth.cpp's hf_tokenizer writes."""
        added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": k == "control"}
                 for i, (t, k) in enumerate(zip(self.tokens, self.types)) if k in ("control", "user")]
        return {
            "version": "1.0",
            "added_tokens": added,
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
            "pre_tokenizer": None,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True,
                      "byte_fallback": True, "ignore_merges": False,
                      "vocab": {t: i for i, t in enumerate(self.tokens)}, "merges": self.merges},
        }


# ---------------------------------------------------------------------------------------------
# prompts (model/gemma4/chat.cpp render_chat + spec §5.2 expansion)

GENERATION_PROMPT = "<|turn>model\n<|channel>thought\n<channel|>"


def audio_prompt_text(instruction):
    """(before, after) the audio block: text first, as rawflow transcribe and the pipeline send it."""
    return f"<bos><|turn>user\n{instruction}", f"<turn|>\n{GENERATION_PROMPT}"


def image_prompt_text(instruction):
    return "<bos><|turn>user\n\n\n", f"\n\n{instruction}<turn|>\n{GENERATION_PROMPT}"


def join_words(words):
    return " ".join(words)


if __name__ == "__main__":
    tok = Tokenizer()
    print(len(tok), "tokens,", len(tok.merges), "merges,", len(SPEECH_WORDS), "speech words")
    print(json.dumps([tok.tokens[i] for i in tok.encode(audio_prompt_text(TRANSCRIBE_PROMPTS[1])[0])]))

#!/usr/bin/python3
"""Writes the tokenizer parity corpus: one JSON-encoded string per line (so lines can hold "\\n").

Deterministic (fixed seed, no network). Covers prose, many scripts, emoji sequences, code with
indentation and tabs, numbers, URLs, runs of spaces/newlines, special-token strings (Gemma 3 and
Gemma 4 spellings, whole and partial), rare but valid code points, and a few long lines for a
throughput figure.

Usage: make_tokenizer_corpus.py OUT.jsonl
       make_tokenizer_corpus.py --overlay-gemma4 GEMMA3_TOKENIZER.json OUT_TOKENIZER.json
The second form writes a test vocabulary: Gemma 3's pieces and merges with Gemma 4's special-token
strings put at Gemma 4's ids (spec §1.4), so both tokenizers also meet Gemma 4's control and
user-defined tokens. It is not Gemma 4's real vocabulary (ids 258880-258884 lose their Gemma 3
pieces, and merges that built those pieces then lead nowhere), only the same shape.
"""
import json
import random
import sys

SEED = 20260415

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Tokenizers split text into pieces that a language model can embed.",
    "Streaming video frames arrive at thirty frames per second, give or take.",
    "Don't panic! It's only a test; we'll see what happens next...",
    "She said, \"Hello there,\" and walked away (without looking back).",
    "Mr. O'Neill paid $1,234.56 for 3 items on 2024-03-15 at 10:45 a.m.",
    "Whitespace   matters:  double  spaces,\ttabs, and trailing spaces   ",
    "CamelCaseIdentifiers and snake_case_names and kebab-case-words.",
    "Antidisestablishmentarianism is a famously long English word.",
    "ALL CAPS SENTENCE WITH NUMBERS 12345 AND SYMBOLS #@!",
    "naïve café résumé coöperate façade jalapeño Zürich Ångström",
    "The model answered: 42. The user replied: why?",
    "Q: What is shown in this image?\nA: A cat sitting on a laptop keyboard.",
    "Transcribe the following speech segment in English into English text.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
    "e.g. i.e. etc. vs. Dr. St. No. approx. ca.",
    "an em—dash, an en–dash, a hyphen-minus, and a figure ‒ dash",
    "“Curly quotes” and ‘single ones’ and «guillemets» and „German“ quotes",
    "Bullet points:\n- first\n- second\n  - nested\n* star\n1. numbered",
]

SCRIPTS = [
    "我们今天去公园散步，天气非常好。",
    "人工智能正在改变世界的许多方面。",
    "東京は日本の首都です。ひらがなとカタカナと漢字。",
    "今日はいい天気ですね！コーヒーを飲みましょう。",
    "한국어 문장을 토큰화하는 테스트입니다.",
    "서울의 밤은 아름답다.",
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "اللغة العربية تكتب من اليمين إلى اليسار.",
    "नमस्ते दुनिया! आप कैसे हैं?",
    "हिन्दी भाषा देवनागरी लिपि में लिखी जाती है।",
    "Привет, мир! Как дела?",
    "Съешь же ещё этих мягких французских булок.",
    "Γειά σου Κόσμε! Ελληνικά γράμματα.",
    "שלום עולם! עברית נכתבת מימין לשמאל.",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Xin chào thế giới! Tiếng Việt có nhiều dấu.",
    "Ṫḣïṡ ḧäṡ ċöṁḃïṅïṅġ ṁäṙḳṡ",
    "ᚠᛇᚻ᛫ᛒᛦᚦ runes and ꦲꦏ꧀ꦱꦫ Javanese",
    "አማርኛ ፊደል ግዕዝ",
    "ქართული ენა მშვენიერია",
    "Հայերեն լեզու",
    "தமிழ் மொழி அழகானது",
    "বাংলা ভাষা",
    "ગુજરાતી લિપિ",
    "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕸𝖆𝖙𝖍 𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐",
]

EMOJI = [
    "😀", "😂", "🥲", "👍", "👍🏻", "👍🏽", "👍🏿", "🙋‍♀️", "🧑‍🚀", "👩🏽‍💻",
    "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️", "❤️", "❤️‍🔥", "🇺🇸", "🇯🇵", "🇩🇪", "1️⃣", "#️⃣",
    "🫠", "🪿", "🧌", "🐈‍⬛", "👁️‍🗨️", "🤌🏼", "🫱🏾‍🫲🏻", "☕", "⚡", "✨",
]

CODE = [
    "#include <vector>\n\nint main() {\n    std::vector<int> v{1, 2, 3};\n    for (int x : v) {\n        printf(\"%d\\n\", x);\n    }\n    return 0;\n}\n",
    "template <typename T>\nT clamp(T x, T lo, T hi) {\n\treturn x < lo ? lo : (x > hi ? hi : x);\n}\n",
    "def fib(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "class Node:\n\tdef __init__(self, value):\n\t\tself.value = value\n\t\tself.next = None\n",
    "if (ptr != nullptr && *ptr >= 0x7F) { ptr->~T(); }  // destroy\n",
    "for i in range(10):\n        if i % 2 == 0:\n                print(i, end=' ')\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name ASC;",
    "const f = async (x) => { await sleep(100); return x ?? 0; };",
    "<html><body><table><tr><td>cell</td></tr></table></body></html>",
    "<div class=\"row\"><span>text</span></div>\n<b>bold</b> <i>it</i> <s>strike</s> </s>",
    "fn main() {\n    let mut v: Vec<u8> = Vec::new();\n    v.push(b'a');\n}\n",
    "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
    "x = a[i][j] + b[i,j] - c{k} * d<e>(f) / g | h & i ^ ~j",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do\n\techo \"$f\"\ndone\n",
    "    \t  \t mixed indentation \t\t  ",
    "\t\t\t\ttabbed line\n\t\t\t\t\t\tdeeper\n\t\tshallower",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979",
    "-0.001", "1e-9", "6.022e23", "1,000,000", "1.000.000,50", "0xDEADBEEF", "0b101010",
    "+1 (555) 123-4567", "2024-12-31T23:59:59Z", "99.9%", "$4.99", "€12,50", "¥1000", "½ ¾ ⅞",
    "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "一二三四五六七八九十", "Ⅻ ⅻ", "①②③",
]

URLS = [
    "https://www.example.com/path/to/page?query=1&lang=en#section",
    "http://localhost:8080/api/v1/items/42",
    "rtsp://127.0.0.1:8554/stream",
    "ftp://files.example.org/pub/file.tar.gz",
    "mailto:someone@example.com",
    "user.name+tag@sub.domain.co.uk",
    "/usr/local/lib/python3.11/site-packages/numpy/__init__.py",
    "C:\\Users\\Public\\Documents\\report (final).docx",
    "https://ja.wikipedia.org/wiki/日本語",
    "git@github.com:ggml-org/llama.cpp.git",
]

# Both vocabularies' spellings: in a Gemma 3 vocabulary the Gemma 4 strings are plain text, and
# vice versa; either way both tokenizers must agree.
SPECIALS = [
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[multimodal]",
    "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>",
    "<|turn>", "<turn|>", "<|image>", "<image|>", "<|image|>", "<|audio>", "<audio|>", "<|audio|>",
    "<|video|>", "<|think|>", "<|channel>", "<channel|>", "<|tool>", "<tool|>", "<|tool_call>",
    "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>",
    "<unused0>", "<unused17>", "<unused99>", "</s>", "<s>", "<table>", "</table>", "<h1>",
]
PARTIALS = [
    "<|tur", "<turn", "turn|>", "<|image", "image|>", "<bo", "bos>", "<eo", "<start_of_tu",
    "end_of_turn>", "<unused", "<|", "|>", "<", ">", "<<bos>>", "<bos<eos>>", "<|<|turn>|>",
    "<<start_of_turn>", "<start_of_turn>>", "<start_of_turn<end_of_turn>", "<|\"", "\"|>",
]

RARE = [
    "\u00a0non-breaking\u00a0spaces\u00a0", "\u2003em space\u2009thin\u200bzero-width",
    "\u200d\u200c\u2060 joiners alone", "\ufeffBOM at start", "private use \ue000\ue123\uf8ff",
    "plane 15 \U000f0000 plane 16 \U0010fffd", "noncharacters \ufdd0 \ufffe \U0010ffff",
    "replacement \ufffd char", "combining e\u0301 a\u0308 n\u0303 o\u0327\u0301\u0302",
    "zalgo t\u0336\u0335\u0334e\u0337\u0338s\u0321\u0322t", "math \u2200x\u2208\u211d: x\u00b2 \u2265 0",
    "box \u2500\u2502\u250c\u2510\u2514\u2518\u253c", "braille \u2801\u2803\u2809\u2819",
    "control \x01\x02\x1b[31mred\x1b[0m \x7f", "carriage\r\nreturn\rline", "form\x0cfeed\x0bvtab",
    "NUL byte \x00 inside", "ancient \U00010330\U00010331 \U0001d11e music",
    "variation \u2764\ufe0e text vs \u2764\ufe0f emoji", "tags \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "surrogate-range neighbours \ud7ff \ue000", "halfwidth ｶﾀｶﾅ fullwidth ＡＢＣ１２３",
    "ligatures ﬁ ﬂ ﬀ ﬃ", "superscripts x¹²³ subscripts H₂O", "\u0600\u0601 Arabic number signs",
]

WS_ATOMS = [" ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", " \n", "\n ", "\r\n", "\u3000"]


def rand_ws(rng):
    kind = rng.randrange(6)
    if kind == 0:
        return " " * rng.randint(1, 40)
    if kind == 1:
        return "\n" * rng.randint(1, 40)
    if kind == 2:
        return "\t" * rng.randint(1, 35)
    return "".join(rng.choice(WS_ATOMS) for _ in range(rng.randint(1, 8)))


def rand_codepoints(rng, n):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x23FF),
              (0x2500, 0x27BF), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
              (0xE000, 0xF8FF), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF),
              (0xE0000, 0xE007F), (0xF0000, 0xF00FF)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def fragment(rng):
    pools = [PROSE, SCRIPTS, EMOJI, CODE, NUMBERS, URLS, SPECIALS, PARTIALS, RARE]
    weights = [6, 5, 3, 3, 3, 2, 3, 2, 2]
    pool = rng.choices(pools, weights)[0]
    s = rng.choice(pool)
    if pool is PROSE and rng.random() < 0.3:
        words = s.split(" ")
        rng.shuffle(words)
        s = " ".join(words)
    return s


def chat(rng, g4):
    bos, sot, eot = ("<bos>", "<|turn>", "<turn|>") if g4 else ("<bos>", "<start_of_turn>", "<end_of_turn>")
    parts = [bos]
    for _ in range(rng.randint(1, 3)):
        parts.append(f"{sot}user\n{fragment(rng)}{eot}\n{sot}model\n")
        if g4 and rng.random() < 0.5:
            parts.append("<|channel>thought\n<channel|>")
        parts.append(fragment(rng) + eot + "\n")
    if g4 and rng.random() < 0.5:
        parts.insert(2, "\n\n<|image>" + "<|image|>" * rng.randint(1, 8) + "<image|>\n\n")
    return "".join(parts)


GEMMA4_SPECIALS = {
    46: "<|tool>", 47: "<tool|>", 48: "<|tool_call>", 49: "<tool_call|>", 50: "<|tool_response>",
    51: "<tool_response|>", 52: "<|\"|>", 98: "<|think|>", 100: "<|channel>", 101: "<channel|>",
    105: "<|turn>", 106: "<turn|>", 255999: "<|image>", 256000: "<|audio>", 258880: "<|image|>",
    258881: "<|audio|>", 258882: "<image|>", 258883: "<audio|>", 258884: "<|video|>",
}


def overlay_gemma4(src, dst):
    with open(src, encoding="utf-8") as f:
        tj = json.load(f)
    vocab = tj["model"]["vocab"]
    by_id = {i: s for s, i in vocab.items()}
    added = {a["id"]: a for a in tj["added_tokens"]}
    for i, s in GEMMA4_SPECIALS.items():
        del vocab[by_id[i]]
        vocab[s] = i
        a = added.setdefault(i, {"id": i, "single_word": False, "lstrip": False, "rstrip": False,
                                 "normalized": False})
        a["content"] = s
        a["special"] = True
    tj["added_tokens"] = sorted(added.values(), key=lambda a: a["id"])
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--overlay-gemma4":
        overlay_gemma4(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 2:
        sys.exit("usage: make_tokenizer_corpus.py OUT.jsonl")
    rng = random.Random(SEED)
    lines = []
    # Every building block on its own, and with a leading/trailing space.
    for pool in (PROSE, SCRIPTS, EMOJI, CODE, NUMBERS, URLS, SPECIALS, PARTIALS, RARE):
        for s in pool:
            lines += [s, " " + s, s + " ", "\n" + s + "\n"]
    # Whitespace runs alone and between words.
    for n in range(1, 41):
        lines += [" " * n, "\n" * n, "\t" * n, "a" + " " * n + "b", "a" + "\n" * n + "b",
                  "\n" * n + " " * n, " \n" * n]
    lines += ["", " ", "\n", "▁", "▁▁ ▁", "__", "<0x41>", "<0xE2><0x96><0x81>"]
    # Emoji sequences glued together and to text.
    for _ in range(150):
        lines.append("".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 6))) +
                     rng.choice(["", " ", "!", "ok", "\n"]))
    # Random mixtures of everything.
    for _ in range(900):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(fragment(rng))
            if rng.random() < 0.5:
                parts.append(rand_ws(rng))
        lines.append("".join(parts))
    # Random code points from many blocks (rare characters, unknown to the vocabulary -> bytes).
    for _ in range(250):
        lines.append(rand_codepoints(rng, rng.randint(1, 40)))
    # Chat-formatted prompts in both spellings.
    for _ in range(150):
        lines.append(chat(rng, g4=rng.random() < 0.5))
    # Special strings packed together, to test overlapping matches.
    for _ in range(150):
        lines.append("".join(rng.choice(SPECIALS + PARTIALS) for _ in range(rng.randint(2, 10))))
    # A few long lines (throughput, and long BPE words).
    for _ in range(12):
        lines.append("".join(fragment(rng) + rng.choice([" ", "\n", "", "  "]) for _ in range(600)))
    lines.append("x" * 20000)
    lines.append("ab" * 10000)
    lines.append("日本" * 5000)

    with open(sys.argv[1], "w", encoding="utf-8") as f:
        for s in lines:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"{len(lines)} lines, {sum(len(s.encode()) for s in lines)} bytes -> {sys.argv[1]}",
          file=sys.stderr)


if __name__ == "__main__":
    main()

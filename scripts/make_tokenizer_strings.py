#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/strings.json: a few hundred varied strings for tokenizer
golden tests (whitespace runs, newlines, tabs, digits, contractions, accents, CJK, emoji, code,
mixed scripts, unusual-but-valid UTF-8). Deterministic (fixed seed); stdlib only.

The ids for these strings come from Hugging Face on the GPU machine: scripts/make_tokenizer_fixtures.py.
"""
import json
import random
import sys
from pathlib import Path

HAND = [
    "", " ", "  ", "\t", "\n", "\r\n", " \n ", "\n\n\n", "   leading", "trailing   ",
    "Hello world", "Hello  world", "Hello   world", "hello\tworld", "hello\nworld", "hello\r\nworld",
    "Hello, world!", "HELLO WORLD", "hElLo WoRlD", "don't", "I'm", "you're", "we've", "she'll",
    "he'd", "it's", "DON'T", "I'M YOU'RE", "'s 't 're 've 'm 'll 'd", "rock 'n' roll", "''quoted''",
    "12345", "3.14159", "1,000,000", "2024-11-26", "0x1F", "1e-5", "$19.99", "100%", "v1.2.3",
    "9876543210 0123456789", "12 345 6789", "phone: +1 (555) 123-4567",
    "café", "naïve", "résumé", "Ångström", "Straße", "façade", "coöperate", "São Paulo",
    "Ελληνικά", "Русский текст", "עברית", "العربية", "हिन्दी", "ไทย", "한국어", "日本語のテキスト",
    "中文字符测试", "汉字和English混合", "emoji 😀", "👍🏽", "👨‍👩‍👧‍👦 family", "🇫🇷 flag", "❤️", "✨ sparkles ✨",
    "ℌ𝔢𝔩𝔩𝔬", "𝕳𝖊𝖑𝖑𝖔", "ﬁ ligature", "Ⅻ roman", "½ ¼ ¾", "①②③", "™ © ®", "€ £ ¥ ₹",
    "a\u0301 combining", "e\u0308\u0301", "zero\u200bwidth", "nb\u00a0sp", "soft\u00adhyphen",
    "\u2028line sep", "\ufeffbom", "\u3000ideographic space", "tab\ttab\t\ttab",
    "def foo(x):\n    return x * 2\n", "int main(void) {\n\treturn 0;\n}\n",
    "for (i = 0; i < n; ++i) { a[i] += b[i]; }", "#include <stdio.h>", "x = {'a': 1, \"b\": [2, 3]}",
    "if x==y:return", "a->b = c >> 2;", "/* comment */ // another", "s = r'\\d+\\s*'",
    "    indented four", "\t\tindented tabs", "trailing spaces    \n", "mixed \t \n whitespace",
    "<|endoftext|>", "text<|endoftext|>more", "<s>", "</s>", "<unk>", "<s> hello </s>",
    "The quick brown fox jumps over the lazy dog.", "A  B   C    D", "a.b.c", "...", "?!?!", "---",
    "@-@", " @,@ ", "= = Heading = =", " = Robert Boulter = \n", "<unk> lobster", "e.g. i.e. etc.",
    "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\System32", "~/.bashrc",
    "αβγ δεζ", "Iñtërnâtiônàlizætiøn", "ÀÉÎÕÜ àéîõü", "Ω≈ç√∫˜µ≤≥÷", "¡¿", "«guillemets»",
    "“smart quotes” ‘single’", "em—dash en–dash", "…ellipsis", "•bullet", "°degree", "±plus",
]

WORDS = ["the", "of", "and", "to", "in", "is", "attention", "sparse", "model", "token",
         "Transformer", "GPT", "llama", "naïve", "über", "日本", "数据", "😀", "café", "x86_64",
         "don't", "it's", "1024", "3.5", "@-@", "(", ")", ",", ".", "\"", "'", ":", ";", "{", "}"]
SEPS = [" ", " ", " ", "  ", "\t", "\n", "\n\n", " \n", "", "   "]


def random_strings(n, rng):
    out = []
    for _ in range(n):
        k = rng.randint(1, 12)
        parts = []
        for _ in range(k):
            parts.append(rng.choice(WORDS))
            parts.append(rng.choice(SEPS))
        s = "".join(parts)
        if rng.random() < 0.2:
            s = s.upper()
        if rng.random() < 0.1:
            s = " " + s
        out.append(s)
    return out


def random_unicode(n, rng):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x4E00, 0x4FFF),
              (0x3040, 0x30FF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F), (0x2000, 0x206F),
              (0x10000, 0x1007F)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 20)):
            lo, hi = rng.choice(ranges)
            cp = rng.randint(lo, hi)
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0x41
            chars.append(chr(cp))
        out.append("".join(chars))
    return out


def main():
    rng = random.Random(1234)
    strings = HAND + random_strings(150, rng) + random_unicode(80, rng)
    seen, unique = set(), []
    for s in strings:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    out = Path(sys.argv[1] if len(sys.argv) > 1 else
               Path(__file__).resolve().parent.parent / "tests/fixtures/tokenizers/strings.json")
    out.write_text(json.dumps({"seed": 1234, "strings": unique}, ensure_ascii=False, indent=0) + "\n",
                   encoding="utf-8")
    print(f"{len(unique)} strings -> {out}")


if __name__ == "__main__":
    main()

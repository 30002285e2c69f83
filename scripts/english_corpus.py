"""Turns extracted Debian `fortunes` and `wordnet-base` files into one English passage per line.

Usage: english_corpus.py ROOT/usr/share > english.txt   (see english-corpus.sh)
Deterministic: files in sorted order, no randomness.
"""
import os
import re
import sys

share = sys.argv[1]
out = sys.stdout
seen = set()


def emit(s):
    s = re.sub(r"\s+", " ", s).strip()
    if len(s) < 8 or len(s) > 400 or s in seen:
        return
    letters = sum(c.isalpha() or c == " " for c in s)
    if letters < 0.8 * len(s) or not s.isascii():
        return
    seen.add(s)
    out.write(s + "\n")


fdir = os.path.join(share, "games", "fortunes")
for name in sorted(os.listdir(fdir)):
    path = os.path.join(fdir, name)
    if "." in name or not os.path.isfile(path):
        continue
    text = open(path, encoding="latin-1").read()
    for entry in text.split("\n%\n"):
        emit(entry)

wdir = os.path.join(share, "wordnet")
for pos in ("noun", "verb", "adj", "adv"):
    for line in open(os.path.join(wdir, "data." + pos), encoding="latin-1"):
        if line.startswith("  ") or "| " not in line:
            continue
        gloss = line.split("| ", 1)[1].strip()
        parts = gloss.split("; ")
        for p in parts:
            p = p.strip()
            if p.startswith('"'):
                emit(p.strip('"'))
            elif p:
                emit(p[0].upper() + p[1:] + ".")

#!/usr/bin/env bash
# Builds the extra English training text of the text prior from Debian packages (pinned
# versions): fortune cookies (fortunes) and WordNet glosses and example sentences (wordnet-base).
# Writes one sentence or short passage per line to $1. Needs apt-get, dpkg-deb and python3.
#
#   scripts/english-corpus.sh /tmp/english.txt
set -euo pipefail
out=${1:?usage: english-corpus.sh OUT.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download fortunes=1:1.99.1-7.3 wordnet-base=1:3.0-37 >/dev/null)
(cd "$work" && sha256sum ./*.deb) >&2
for d in "$work"/*.deb; do dpkg-deb -x "$d" "$work/root"; done
python3 "$(dirname "$0")/english_corpus.py" "$work/root/usr/share" >"$out"
wc -lc "$out" >&2

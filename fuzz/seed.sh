#!/bin/sh
# (Re)creates the seed corpora of the fuzz targets in fuzz/corpus/<target>/ from the protocol
# corpus (tests/corpus/protocol/*.bin) and a few hand-written inputs. The seeds are derived
# data, so they are not committed (fuzz/corpus/ is ignored); run this before a campaign.
#
#   fuzz/seed.sh            add the seeds (existing corpus files are kept)
#   fuzz/seed.sh --clean    delete fuzz/corpus/ first
#
# Each target's input starts with a header (see fuzz/src/<target>.rs):
#   framer    [config][split seed] stream   -> \x00\x00: qemu-ga limits, 64 KiB buffer
#   scanner   stream
#   agent     [flags][chunk tag] stream     -> \x00\x00: default config, "rest of the input"
#   unescape  [mode] string content
#   writer    arbitrary-encoded case (a few simple ones, the fuzzer finds the rest)
#   client    arbitrary-encoded script (a few: adversarial guest, loopback, loopback with noise)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
protocol="$here/../tests/corpus/protocol"
corpus="$here/corpus"

if [ "${1:-}" = "--clean" ]; then
    rm -rf "$corpus"
fi
for t in framer scanner agent unescape writer client; do
    mkdir -p "$corpus/$t"
done

n=0
for f in "$protocol"/*.bin; do
    name=$(basename "$f" .bin)
    { printf '\000\000'; cat "$f"; } > "$corpus/framer/$name"
    cp "$f" "$corpus/scanner/$name"
    { printf '\000\000'; cat "$f"; } > "$corpus/agent/$name"
    n=$((n + 1))
done

# String contents for `unescape` (mode 0: double quotes, 1: single quotes; made lexically valid):
# escapes, written literally...
i=0
for s in 'plain' '\"\/\\\b\f\n\r\t' "it\\'s" '\u00e9\uD83D\uDE00' '\u0000' '\uD800' '\uDC00x' \
    '\uFFFF' '\uFDD0' '\u12' '\x' '\uD83D\u0041'; do
    i=$((i + 1))
    printf '\000%s' "$s" > "$corpus/unescape/seed-dq-$i"
    printf '\001%s' "$s" > "$corpus/unescape/seed-sq-$i"
done
# ...and raw bytes (octal escapes interpreted by printf): UTF-8, modified UTF-8, invalid forms.
for s in 'caf\303\251' '\300\200' '\355\240\200' '\357\277\277' '\364\220\200\200' \
    '\370\210\200\200\200' '\303' 'a\200b' '\360\237\230\200'; do
    i=$((i + 1))
    printf "\\000$s" > "$corpus/unescape/seed-dq-$i"
done

# `writer`: the first byte picks the case (mod 16): 0 string, 1 pieces, 2 int, 3 uint, 4 double.
printf '\000caf\303\251 \000 \377\300\200' > "$corpus/writer/seed-string"
printf '\002\377\377\377\377\377\377\377\377' > "$corpus/writer/seed-int"
printf '\004\232\231\231\231\231\231\271\077' > "$corpus/writer/seed-double-0.1"
printf '\004\000\000\000\000\000\000\360\177' > "$corpus/writer/seed-double-inf"

# `client`: mode byte (bit 0 loopback, bit 1 noise, bit 2 small reply limit, bit 3 plain sync),
# then ops (the first byte of each picks the op).
printf '\000\000\001\004\000\001\002\004\001\007\001' > "$corpus/client/seed-adversarial"
printf '\010\000\002\005\002\001\006\020{"a":1}\012' > "$corpus/client/seed-plain-sync"
printf '\001\000\002\001\002\005\002\011\001\000' > "$corpus/client/seed-loopback"
printf '\003\000\003\377\377\002\002\001' > "$corpus/client/seed-loopback-noise"

echo "seeded $n protocol streams into fuzz/corpus/{framer,scanner,agent}, plus unescape, writer and client seeds"

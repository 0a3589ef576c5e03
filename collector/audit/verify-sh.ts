// verify/verify.sh in every bundle: the signatures and hashes checked with nothing but POSIX sh,
// openssl, sha256sum and jq, so an auditor need not trust any code of ours for them. The Merkle
// arithmetic, the chains and the entry-envelope match are verify.mjs's; it is run when node is there.
export const VERIFY_SH = `#!/bin/sh
# Verifies this vcm audit bundle with openssl, sha256sum and jq.
# Usage: sh verify/verify.sh [COLLECTOR-KEY-FINGERPRINT]
# Exit 0: verified. 1: a defect (each is printed). 2: a tool is missing or this is not a bundle.
set -u
cd "$(dirname "$0")/.." || exit 2
for tool in openssl sha256sum jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "UNUSABLE: $tool is not installed"; exit 2; }
done
[ -f manifest.json ] && [ -f manifest.dsse.json ] || { echo "UNUSABLE: run this inside an unpacked bundle"; exit 2; }
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT
defects=0
defect() { echo "$1"; defects=$((defects + 1)); }
b64d() { openssl base64 -d -A; }

# PEM -> SHA-256 of its SubjectPublicKeyInfo DER: the key's fingerprint.
fingerprint() { openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1; }

# verify_dsse PAYLOADTYPE PAYLOADFILE SIGB64 PEM: an Ed25519 signature over DSSE's PAE.
verify_dsse() {
  len=$(wc -c < "$2" | tr -d ' ')
  { printf 'DSSEv1 %s %s %s ' "\${#1}" "$1" "$len"; cat "$2"; } > "$work/pae"
  printf '%s' "$3" | b64d > "$work/sig" 2>/dev/null
  openssl pkeyutl -verify -pubin -inkey "$4" -rawin -in "$work/pae" -sigfile "$work/sig" >/dev/null 2>&1
}

# 1. The collector key, and the manifest's signature.
jq -j '.collector.publicKey' manifest.json > "$work/collector.pem"
cmp -s "$work/collector.pem" collector/collector.pem || defect "AUD_COLLECTOR_KEY: collector/collector.pem is not the key the manifest names"
fp=$(fingerprint collector/collector.pem)
echo "collector key fingerprint: $fp"
if [ $# -ge 1 ]; then
  [ "$fp" = "$(printf '%s' "$1" | tr 'A-F' 'a-f')" ] || defect "AUD_COLLECTOR_KEY: the bundle's collector key is not the one you gave ($1)"
else
  echo "  (compare it with the fingerprint you obtained out of band, or pass it as the first argument)"
fi
jq -j '.payload' manifest.dsse.json | b64d > "$work/manifest" 2>/dev/null
cmp -s "$work/manifest" manifest.json || defect "AUD_MANIFEST_SIGNATURE: manifest.dsse.json does not hold exactly manifest.json"
verify_dsse "$(jq -r '.payloadType' manifest.dsse.json)" manifest.json "$(jq -r '.signatures[0].sig' manifest.dsse.json)" collector/collector.pem \\
  || defect "AUD_MANIFEST_SIGNATURE: the manifest's signature does not verify under the collector key"

# 2. Every file's hash; nothing missing, nothing extra.
jq -r '.files[] | "\\(.sha256)  \\(.path)"' manifest.json > "$work/sums"
sha256sum -c --quiet "$work/sums" 2>/dev/null | sed 's/^/AUD_FILE_HASH: /' > "$work/bad"
[ -s "$work/bad" ] && { cat "$work/bad"; defects=$((defects + $(wc -l < "$work/bad"))); }
jq -r '.files[].path' manifest.json | LC_ALL=C sort > "$work/listed"
find . -type f ! -path ./manifest.json ! -path ./manifest.dsse.json | sed 's|^\\./||' | LC_ALL=C sort > "$work/present"
LC_ALL=C comm -23 "$work/listed" "$work/present" | while IFS= read -r f; do echo "AUD_FILE_MISSING: $f"; done > "$work/missing"
LC_ALL=C comm -13 "$work/listed" "$work/present" | while IFS= read -r f; do echo "AUD_FILE_EXTRA: $f"; done >> "$work/missing"
[ -s "$work/missing" ] && { cat "$work/missing"; defects=$((defects + $(wc -l < "$work/missing"))); }

# 3. Checkpoints: C2SP signed notes; the signature is over the text before the blank line.
for cp in log/checkpoint-*.txt log/checkpoints/*.txt; do
  [ -f "$cp" ] || continue
  awk 'BEGIN{body=1} body && $0=="" {body=0; next} body {print}' "$cp" > "$work/note"
  origin=$(head -n 1 "$work/note")
  ok=1
  # The signature line: em dash, space, the origin, space, base64 of a 4-byte key ID and 64 signature bytes.
  grep "^— $origin " "$cp" | cut -d' ' -f3 | head -n 1 | b64d > "$work/keysig" 2>/dev/null
  tail -c 64 "$work/keysig" > "$work/sig"
  [ "$(wc -c < "$work/keysig" | tr -d ' ')" = 68 ] || ok=0
  [ $ok = 1 ] && openssl pkeyutl -verify -pubin -inkey collector/collector.pem -rawin -in "$work/note" -sigfile "$work/sig" >/dev/null 2>&1 || ok=0
  [ $ok = 1 ] || defect "AUD_CHECKPOINT_SIGNATURE: $cp is not signed by the collector key"
done

# 4. Host keys: each PEM's fingerprint, to find an envelope's key by its keyid.
mkdir "$work/keys"
for rec in keys/*.json; do
  [ -f "$rec" ] || continue
  case "$rec" in *.revoked.json) continue ;; esac
  jq -j '.publicKey' "$rec" > "$work/k.pem"
  kfp=$(fingerprint "$work/k.pem")
  [ -n "$kfp" ] && cp "$work/k.pem" "$work/keys/$kfp.pem"
  case "$rec" in
    *.key-*.json) [ "$kfp" = "$(jq -r '.keyId' "$rec")" ] || defect "AUD_KEY: $rec: the key's fingerprint is not its keyId" ;;
    *) id=$(basename "$rec" .json); [ "$kfp" = "$id" ] || defect "AUD_KEY: $rec: the enrolled key's fingerprint is not the agent id" ;;
  esac
done

# 5. Every envelope's signature, under the agent key its keyid names.
envelopes=0
for ev in evidence/*/*.jsonl; do
  [ -f "$ev" ] || continue
  agent=$(basename "$(dirname "$ev")")
  n=0
  while IFS= read -r line; do
    n=$((n + 1)); envelopes=$((envelopes + 1))
    printf '%s' "$line" > "$work/env"
    keyid=$(jq -r '.signatures[0].keyid' "$work/env")
    jq -j '.payload' "$work/env" | b64d > "$work/payload" 2>/dev/null
    seq=$(jq -r '.predicate.seq' "$work/payload" 2>/dev/null)
    if [ ! -f "$work/keys/$keyid.pem" ]; then
      defect "AUD_ENVELOPE_SIGNATURE: $ev line $n (agent $agent, seq $seq): signed by a key the bundle does not hold"
    elif ! verify_dsse "$(jq -r '.payloadType' "$work/env")" "$work/payload" "$(jq -r '.signatures[0].sig' "$work/env")" "$work/keys/$keyid.pem"; then
      defect "AUD_ENVELOPE_SIGNATURE: $ev line $n (agent $agent, seq $seq): the signature does not verify"
    fi
  done < "$ev"
done
echo "checked with openssl: the manifest, $(wc -l < "$work/listed" | tr -d ' ') file hashes, the checkpoints, $envelopes envelope signatures"

# 6. The Merkle arithmetic, the key valid at each seq, the chains, and entries against envelopes.
if command -v node >/dev/null 2>&1; then
  echo "running verify/verify.mjs for the log roots, the key at each seq, the chains and the entries:"
  if [ $# -ge 1 ]; then node verify/verify.mjs --collector-fingerprint "$1" . || defects=$((defects + 1))
  else node verify/verify.mjs . || defects=$((defects + 1)); fi
else
  echo "node is not installed: the log roots, the key valid at each seq, the chains and the match of entries and envelopes were NOT checked (install Node 18 or later and run node verify/verify.mjs)"
fi
if [ "$defects" -eq 0 ]; then echo "VERIFIED"; exit 0; fi
echo "DEFECTIVE: $defects defects"
exit 1
`;

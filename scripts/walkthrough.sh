#!/usr/bin/env bash
# End-to-end walkthrough on the embedded local log:
#   keygen → sign (local log) → verify → log checkpoint / inclusion / consistency →
#   tamper → rejected → keyless against a private stack (OIDC + CA + log on 127.0.0.1) →
#   policy → content inspection → verify-then-load.
# Everything lives in ./walkthrough-out (recreated on each run); servers stop on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
W="${WALKTHROUGH_DIR:-$PWD/walkthrough-out}"
rm -rf "$W"
mkdir -p "$W"
export MGATTEST_HOME="$W/home"          # the embedded local log lives here
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
expect_reject() {
  printf '$ %s\n' "$*"
  set +e; "$@"; local rc=$?; set -e
  if [ "$rc" -ne 1 ]; then echo "walkthrough: expected a rejection (exit 1), got exit $rc" >&2; exit 1; fi
  echo "(rejected as expected: exit 1)"
}
wait_http() {  # wait until URL answers (bounded)
  for _ in $(seq 1 100); do
    if python -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "walkthrough: $1 did not come up" >&2; exit 1
}
free_port() { python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

step "1. A small model: three files"
python - "$W" <<'EOF'
import json, os, sys
root = os.path.join(sys.argv[1], "model")
os.makedirs(root)
with open(os.path.join(root, "config.json"), "w") as f:
    json.dump({"hidden_size": 64, "layers": 2}, f)
with open(os.path.join(root, "weights.bin"), "wb") as f:
    f.write(os.urandom(1 << 20))
with open(os.path.join(root, "tokenizer.json"), "w") as f:
    json.dump({"vocab": ["a", "b", "c"]}, f)
second = os.path.join(sys.argv[1], "model-v2")
os.makedirs(second)
with open(os.path.join(second, "weights.bin"), "wb") as f:
    f.write(os.urandom(1 << 16))
EOF
ls -l "$W/model"

step "2. A signing key (PKCS#8 PEM)"
show mgattest keygen --out "$W/alice"

step "3. Sign: SLSA provenance → DSSE → entry in the embedded local log (created on first use)"
show mgattest sign "$W/model" --key "$W/alice.key" \
  --builder-id https://ci.example.com/trainer@v1 --param epochs=3 --param lr=0.001
show python -m json.tool --no-ensure-ascii "$W/model.sigstore.json" | head -n 20

step "4. Verify offline: signature, inclusion proof + checkpoint + SET, every file"
show mgattest verify "$W/model" --key "$W/alice.pub"

step "5. The log itself: signed checkpoint, inclusion proof, consistency proof"
LOGDB="$MGATTEST_HOME/log/log.db"
ORIGIN=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['origin'])" "$MGATTEST_HOME/log/log.json")
python -c "import json,sys; open(sys.argv[2],'w').write(json.load(open(sys.argv[1]))['public_key_pem'])" \
  "$MGATTEST_HOME/log/log.json" "$W/log.pub"
mgattest log checkpoint --db "$LOGDB" --key "$MGATTEST_HOME/log/log.key" > "$W/checkpoint-1.txt"
cat "$W/checkpoint-1.txt"
show mgattest sign "$W/model-v2" --key "$W/alice.key"      # the log grows
mgattest log checkpoint --db "$LOGDB" --key "$MGATTEST_HOME/log/log.key" > "$W/checkpoint-2.txt"
show mgattest log verify --bundle "$W/model.sigstore.json" --log-key "$W/log.pub" --origin "$ORIGIN"
mgattest log consistency-proof --db "$LOGDB" --key "$MGATTEST_HOME/log/log.key" --first 1 --last 2 \
  --out "$W/consistency-1-2.json"
show mgattest log consistency --old "$W/checkpoint-1.txt" --new "$W/checkpoint-2.txt" \
  --proof "$W/consistency-1-2.json" --log-key "$W/log.pub" --origin "$ORIGIN"

step "6. Tamper with one byte of the weights → rejected, naming the file"
cp -r "$W/model" "$W/model-tampered"
cp "$W/model.sigstore.json" "$W/model-tampered.sigstore.json"
python - "$W/model-tampered/weights.bin" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 1]))
EOF
expect_reject mgattest verify "$W/model-tampered" --key "$W/alice.pub"
echo extra > "$W/model-tampered/notes.txt"; cp "$W/model/weights.bin" "$W/model-tampered/weights.bin"
expect_reject mgattest verify "$W/model-tampered" --key "$W/alice.pub"

step "7. Keyless: a private stack on 127.0.0.1 (local OIDC issuer, Fulcio-compatible CA, log)"
OIDC_PORT=$(free_port); CA_PORT=$(free_port); LOG_PORT=$(free_port)
mgattest oidc serve --dir "$W/oidc" --port "$OIDC_PORT" > "$W/oidc.log" 2>&1 & PIDS+=($!)
mgattest log init --db "$W/private-log.db" --key-out "$W/private-log.key" --origin "127.0.0.1:$LOG_PORT"
mgattest log serve --db "$W/private-log.db" --key "$W/private-log.key" --port "$LOG_PORT" > "$W/log.log" 2>&1 & PIDS+=($!)
mgattest ca init --dir "$W/ca"
wait_http "http://127.0.0.1:$OIDC_PORT/.well-known/openid-configuration"
mgattest ca serve --dir "$W/ca" --oidc-issuer "http://127.0.0.1:$OIDC_PORT" --port "$CA_PORT" > "$W/ca.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:$LOG_PORT/api/v1/log"
wait_http "http://127.0.0.1:$CA_PORT/api/v2/configuration"
show mgattest trust private --log "http://127.0.0.1:$LOG_PORT" --ca "http://127.0.0.1:$CA_PORT" \
  --oidc "http://127.0.0.1:$OIDC_PORT" --out "$W/trust-config.json"
TOKEN=$(mgattest oidc token --dir "$W/oidc" --subject alice@example.com --issuer "http://127.0.0.1:$OIDC_PORT")
echo '$ mgattest sign model --keyless --identity-token "$TOKEN" --trust-config trust-config.json --out model.keyless.sigstore.json'
mgattest sign "$W/model" --keyless --identity-token "$TOKEN" --trust-config "$W/trust-config.json" \
  --out "$W/model.keyless.sigstore.json"
show mgattest verify "$W/model" --bundle "$W/model.keyless.sigstore.json" --trusted-root "$W/trust-config.json" \
  --identity alice@example.com --issuer "http://127.0.0.1:$OIDC_PORT"
expect_reject mgattest verify "$W/model" --bundle "$W/model.keyless.sigstore.json" \
  --trusted-root "$W/trust-config.json" --identity-regex 'alice@example\.co' --issuer "http://127.0.0.1:$OIDC_PORT"

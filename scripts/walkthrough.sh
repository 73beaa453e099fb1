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
echo "# the bundle (first lines):"
python -c "import json,sys; print('\n'.join(json.dumps(json.load(open(sys.argv[1])), indent=2).splitlines()[:20]))" \
  "$W/model.sigstore.json"

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

step "8. Policy: the release key signed it, it is logged, every file is covered, no pickles"
mkdir -p "$W/policy"
cp policies/key-signed-minimum.yaml "$W/policy/policy.yaml"
cp "$W/alice.pub" "$W/policy/release.pub"
show mgattest trust export --out "$W/policy/local-root.json"   # trust this machine's log elsewhere
show mgattest policy lint "$W/policy/policy.yaml"
show mgattest policy explain "$W/policy/policy.yaml"
show mgattest verify "$W/model" --policy "$W/policy/policy.yaml" \
  --trusted-root "$W/policy/local-root.json" --audit-log "$W/decisions.jsonl"
python - "$W" <<'EOF'
import os, pickle, sys
root = os.path.join(sys.argv[1], "pickled")
os.makedirs(root)
with open(os.path.join(root, "model.pkl"), "wb") as f:
    pickle.dump({"weights": [0.1, 0.2, 0.3]}, f)   # benign, but a pickle
EOF
show mgattest sign "$W/pickled" --key "$W/alice.key"
echo "# signed by the right key and logged, yet the policy denies pickles:"
expect_reject mgattest verify "$W/pickled" --policy "$W/policy/policy.yaml" \
  --trusted-root "$W/policy/local-root.json" --audit-log "$W/decisions.jsonl"
echo "# every decision is in the audit log:"
python - "$W/decisions.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(d["time"], d["decision"].upper(), d["model"], "-", "; ".join(d["reasons"])[:90])
EOF

step "9. Content inspection, without loading anything"
python - "$W" <<'EOF'
import os, sys
import numpy as np
from safetensors.numpy import save_file
base = sys.argv[1]
os.makedirs(os.path.join(base, "suspect"))
# A pickle whose REDUCE would call os.system. It is only written, never loaded.
payload = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x05touch\x94\x85\x94R\x94."
with open(os.path.join(base, "suspect", "evil.pkl"), "wb") as f:
    f.write(payload)
os.makedirs(os.path.join(base, "clean"))
save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)},
          os.path.join(base, "clean", "weights.safetensors"))
EOF
expect_reject mgattest inspect "$W/suspect/evil.pkl"
show mgattest inspect "$W/clean/weights.safetensors"

step "10. Verify-then-load in serving code: mgattest.load()"
show mgattest sign "$W/clean" --key "$W/alice.key"
python - "$W" <<'EOF'
import sys
import mgattest
from mgattest.attest import TrustOptions
from mgattest.loading import PolicyDenied
w = sys.argv[1]
kw = dict(policy=f"{w}/policy/policy.yaml", bundles=[f"{w}/clean.sigstore.json"],
          trust=TrustOptions(trusted_root=f"{w}/policy/local-root.json"))
tensors = mgattest.load(f"{w}/clean", **kw)
print("loaded after verification:", {k: v.shape for k, v in tensors["weights.safetensors"].items()})
with open(f"{w}/clean/weights.safetensors", "r+b") as f:
    f.seek(-4, 2); f.write(b"\x00\x00\x80\x7f")           # flip the last float
try:
    mgattest.load(f"{w}/clean", **kw)
    raise SystemExit("walkthrough: a tampered model was loaded")
except PolicyDenied as exc:
    print("refused to load the tampered model:", str(exc)[:160])
EOF

step "Done"
echo "Everything above ran on this machine: the embedded log is in $MGATTEST_HOME/log,"
echo "the private stack's files in $W. See docs/ for formats, policies and operations."

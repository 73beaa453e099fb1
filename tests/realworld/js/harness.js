// sigstore-js as an independent verifier (and signer) for mgattest's differential tests.
//
//   node harness.js verify REQUEST.json   -> prints {"verdict": "pass"|"fail", "error": ...}
//   node harness.js sign REQUEST.json     -> writes a bundle signed through a ClientTrustConfig
//   node harness.js parse-config CTC.json -> parses a ClientTrustConfig the way sigstore-js does
//
// REQUEST (verify): {"bundle": path, "artifact": path?, "trustedRoot": path (trusted root or
// ClientTrustConfig), "identity": exact SAN?, "issuer": string?, "keys": {hint: pemPath}?}
// REQUEST (sign): {"trustConfig": path, "token": string, "artifact": path, "out": path,
// "bundleType": "messageSignature"|"dsseEnvelope", "payloadType": string?}
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot, SigningConfig } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function readJSON(path) {
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}

function trustedRootOf(doc) {
  return TrustedRoot.fromJSON(doc.trustedRoot !== undefined ? doc.trustedRoot : doc);
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function keysOf(request) {
  const keys = {};
  for (const [hint, pemPath] of Object.entries(request.keys || {})) {
    const der = crypto.createPublicKey(fs.readFileSync(pemPath)).export({ type: 'spki', format: 'der' });
    keys[hint] = { rawBytes: der };
  }
  return keys;
}

function verify(request) {
  const bundle = bundleFromJSON(readJSON(request.bundle));
  const material = toTrustMaterial(trustedRootOf(readJSON(request.trustedRoot)), keysOf(request));
  const verifier = new Verifier(material, {
    tlogThreshold: request.tlogThreshold ?? 1,
    ctlogThreshold: request.keys ? 0 : 1,
    timestampThreshold: 1,
  });
  const artifact = request.artifact ? fs.readFileSync(request.artifact) : undefined;
  const policy = {};
  // sigstore-js matches the SAN as an unanchored regular expression: anchor it.
  if (request.identity) policy.subjectAlternativeName = '^' + escapeRegExp(request.identity) + '$';
  if (request.issuer) policy.extensions = { issuer: request.issuer };
  verifier.verify(toSignedEntity(bundle, artifact), request.identity || request.issuer ? policy : undefined);
}

async function sign(request) {
  const { bundleBuilderFromSigningConfig } = require('@sigstore/sign');
  const { bundleToJSON } = require('@sigstore/bundle');
  const config = readJSON(request.trustConfig);
  const builder = bundleBuilderFromSigningConfig({
    signingConfig: SigningConfig.fromJSON(config.signingConfig),
    identityProvider: { getToken: async () => request.token },
    bundleType: request.bundleType || 'messageSignature',
  });
  const bundle = await builder.create({
    data: fs.readFileSync(request.artifact),
    type: request.payloadType || '',
  });
  fs.writeFileSync(request.out, JSON.stringify(bundleToJSON(bundle)));
}

function parseConfig(path) {
  const doc = readJSON(path);
  trustedRootOf(doc);
  const { bundleBuilderFromSigningConfig } = require('@sigstore/sign');
  bundleBuilderFromSigningConfig({
    signingConfig: SigningConfig.fromJSON(doc.signingConfig),
    identityProvider: { getToken: async () => '' },
    bundleType: 'messageSignature',
  });
}

async function main() {
  const [command, path] = process.argv.slice(2);
  try {
    if (command === 'verify') verify(readJSON(path));
    else if (command === 'sign') await sign(readJSON(path));
    else if (command === 'parse-config') parseConfig(path);
    else throw new Error(`unknown command ${command}`);
    process.stdout.write(JSON.stringify({ verdict: 'pass' }) + '\n');
  } catch (error) {
    process.stdout.write(JSON.stringify({ verdict: 'fail', error: `${error.code || error.name}: ${error.message}` }) + '\n');
  }
}

main();

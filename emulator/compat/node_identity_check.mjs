// Microsoft's Node client must accept the emulator.
//
// Runs ManagedIdentityCredential of @azure/identity 4.13.1 (@azure/msal-node 5.6.0) against an
// azmi-emulator whose `export` lines are already in the environment, as IMDS or App Service,
// and checks that a system-assigned token is issued for the system identity, a user-assigned
// token for the requested client id, and that an unknown client id fails with the service's
// own message — and that the emulator saw exactly the requests the client is documented to
// send. Prints one `PASS: …` or `FAIL: …` line per check and exits with the number of failures.
//
// Only run it inside a network namespace that has nothing but loopback (run.sh does that).
//
// Usage: node node_identity_check.mjs --source imds|app-service --control URL
//        --system-client-id ID --user-assigned-client-id ID --unknown-client-id ID

import { ManagedIdentityCredential } from "@azure/identity";

const SCOPE = "https://vault.azure.net/.default";
const RESOURCE = "https://vault.azure.net";

// Per source: the message the real service puts in its answer for an unknown identity, the
// api-version, and the header that authenticates the request (a value of null names the
// variable holding it).
const EXPECTED = {
  imds: {
    unknownMessage: "Identity not found",
    apiVersion: "2018-02-01",
    header: ["metadata", "true"],
  },
  "app-service": {
    unknownMessage: "Unable to load the proper Managed Identity.",
    apiVersion: "2019-08-01",
    header: ["x-identity-header", null],
  },
};

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i + 1 < argv.length; i += 2) {
    out[argv[i].replace(/^--/, "")] = argv[i + 1];
  }
  for (const name of ["source", "control", "system-client-id", "user-assigned-client-id", "unknown-client-id"]) {
    if (!out[name]) throw new Error(`missing --${name}`);
  }
  if (!(out.source in EXPECTED)) throw new Error(`unknown source ${out.source}`);
  const host = new URL(out.control).hostname;
  if (!["127.0.0.1", "[::1]", "localhost"].includes(host)) {
    throw new Error(`refusing to talk to non-loopback ${host}`);
  }
  return out;
}

function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

// The emulator's record of requests (Node's fetch uses no proxy unless told to).
async function recorded(base) {
  const response = await fetch(`${base}/__emulator/requests`);
  return response.json();
}

async function clearRecorded(base) {
  await fetch(`${base}/__emulator/requests`, { method: "DELETE" });
}

function header(request, name) {
  const found = request.headers.find(([key]) => key === name);
  return found ? found[1] : undefined;
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function checkRequest(source, request, clientId) {
  const want = EXPECTED[source];
  assert(request.method === "GET", `method ${request.method}`);
  const query = new URLSearchParams(request.query);
  assert(query.get("api-version") === want.apiVersion, `api-version ${query.get("api-version")}`);
  assert(query.get("resource") === RESOURCE, `resource ${query.get("resource")}`);
  assert(query.get("client_id") === clientId, `client_id ${query.get("client_id")}, expected ${clientId}`);
  const [name, value] = want.header;
  const expected = value ?? process.env.IDENTITY_HEADER;
  assert(header(request, name) === expected, `header ${name}: ${header(request, name)}`);
}

async function runCheck(name, fn) {
  try {
    await fn();
    console.log(`PASS: ${name}`);
    return true;
  } catch (e) {
    console.log(`FAIL: ${name}: ${e.name}: ${e.message}`);
    return false;
  }
}

async function main() {
  const a = args();
  const source = a.source;
  const base = a.control;

  async function tokenFor(clientId, expectedAppId) {
    await clearRecorded(base);
    const credential = clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
    const before = Date.now();
    const token = await credential.getToken(SCOPE);
    const claims = claimsOf(token.token);
    assert(claims.aud === RESOURCE, `aud ${claims.aud}`);
    assert(claims.appid === expectedAppId, `appid ${claims.appid}, expected ${expectedAppId}`);
    const lifetime = (token.expiresOnTimestamp - before) / 1000;
    assert(lifetime >= 86000 && lifetime <= 86500, `expires ${lifetime} s away`);
    // AZURE_POD_IDENTITY_AUTHORITY_HOST turns the client's IMDS probe off: one request.
    const requests = await recorded(base);
    assert(requests.length === 1, `${requests.length} requests recorded`);
    assert(requests[0].status === 200, `status ${requests[0].status}`);
    checkRequest(source, requests[0], clientId ?? null);
  }

  async function unknownIdentityFails() {
    await clearRecorded(base);
    let message = null;
    try {
      await new ManagedIdentityCredential({ clientId: a["unknown-client-id"] }).getToken(SCOPE);
    } catch (e) {
      message = String(e.message);
    }
    assert(message !== null, "getToken succeeded for an identity the emulator does not have");
    const want = EXPECTED[source].unknownMessage;
    assert(message.includes(want), `${JSON.stringify(want)} not in ${JSON.stringify(message)}`);
    const requests = await recorded(base);
    assert(requests.length === 1, `${requests.length} requests recorded (a 400 is not retried)`);
    assert(requests[0].status === 400, `status ${requests[0].status}`);
    checkRequest(source, requests[0], a["unknown-client-id"]);
  }

  const results = [
    await runCheck(`node ${source}: system-assigned token`, () => tokenFor(null, a["system-client-id"])),
    await runCheck(`node ${source}: user-assigned token by clientId`, () =>
      tokenFor(a["user-assigned-client-id"], a["user-assigned-client-id"]),
    ),
    await runCheck(`node ${source}: unknown identity fails as the service makes it`, unknownIdentityFails),
  ];
  process.exitCode = results.filter((ok) => !ok).length;
}

await main();

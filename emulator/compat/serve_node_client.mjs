// Many processes, one cache: Microsoft's Node client through `azmi serve`.
//
// One client process of several: ManagedIdentityCredential of @azure/identity 4.13.1 with
// AZURE_POD_IDENTITY_AUTHORITY_HOST pointing at `azmi serve` (which gets its tokens from the
// emulator). Gets a token for RESOURCE (and CLIENT_ID, if not empty), checks that it is the one
// the emulator issues for that resource and identity (aud, appid) and that it is not about to
// expire, and exits 0 (or 1, saying why on stderr).
//
// Usage: node serve_node_client.mjs RESOURCE CLIENT_ID|"" EXPECTED_APPID

import { ManagedIdentityCredential } from "@azure/identity";

const [resource, clientId, appid] = process.argv.slice(2);
const credential = clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
const token = await credential.getToken(`${resource}/.default`);
const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
const problems = [];
if (claims.aud !== resource) problems.push(`aud ${claims.aud}, expected ${resource}`);
if (claims.appid !== appid) problems.push(`appid ${claims.appid}, expected ${appid}`);
if (token.expiresOnTimestamp <= Date.now() + 300_000) problems.push(`expiresOnTimestamp ${token.expiresOnTimestamp} is not in the future`);
for (const p of problems) console.error(`serve node client ${resource} ${clientId || "system"}: ${p}`);
process.exit(problems.length ? 1 : 0);

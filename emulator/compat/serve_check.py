"""Many processes, one cache: Microsoft's Python client through `azmi serve`.

`--client`: one process of many. ManagedIdentityCredential (azure-identity 1.27.0) with
AZURE_POD_IDENTITY_AUTHORITY_HOST pointing at `azmi serve`, which gets its tokens from the
emulator. Gets a token for --resource (and --client-id, if given), checks that it is the one the
emulator issues for that resource and identity and that it is not expired, and exits 0 (or 1,
saying why on stderr).

`--verify`: after every client: the emulator must have recorded exactly one token request per
identity and resource (--expect pairs `resource,client_id`, client_id empty for
system-assigned). Prints one `PASS: …` or `FAIL: …` line.

Only run it inside a network namespace that has nothing but loopback (run.sh does that).
"""

import argparse
import sys
import time

from azure.identity import ManagedIdentityCredential

from azure_identity_check import claims_of, control_base, query_of, recorded


def client(args):
    kwargs = {"client_id": args.client_id} if args.client_id else {}
    token = ManagedIdentityCredential(**kwargs).get_token(f"{args.resource}/.default")
    claims = claims_of(token.token)
    problems = []
    if claims.get("aud") != args.resource:
        problems.append(f"aud {claims.get('aud')!r}, expected {args.resource!r}")
    if claims.get("appid") != args.appid:
        problems.append(f"appid {claims.get('appid')!r}, expected {args.appid!r}")
    if token.expires_on <= time.time() + 300:
        problems.append(f"expires_on {token.expires_on} is not in the future")
    for p in problems:
        print(f"serve client {args.resource} {args.client_id or 'system'}: {p}", file=sys.stderr)
    return 1 if problems else 0


def verify(args):
    requests = [r for r in recorded(control_base("imds", args.control)) if r["path"] == "/metadata/identity/oauth2/token"]
    seen = {}
    for r in requests:
        query = query_of(r)
        key = (query.get("resource", ""), query.get("client_id", ""))
        seen[key] = seen.get(key, 0) + 1
    expected = {tuple(pair.split(",", 1)): 1 for pair in args.expect}
    if seen == expected:
        print(f"PASS: serve: {args.clients} processes, {len(requests)} upstream requests, one per identity and resource")
        return 0
    print(f"FAIL: serve: the emulator recorded {seen}, expected {expected}")
    return 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--resource")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--appid")
    parser.add_argument("--control")
    parser.add_argument("--clients", type=int, default=0)
    parser.add_argument("--expect", action="append", default=[])
    args = parser.parse_args()
    return client(args) if args.client else verify(args)


if __name__ == "__main__":
    sys.exit(main())

"""Microsoft's own client must accept the emulator.

Runs azure.identity.ManagedIdentityCredential (azure-identity 1.27.0, msal 1.39.0) against
an azmi-emulator whose `export` lines are already in the environment, and checks that:

  * a system-assigned token is issued for the system identity,
  * a user-assigned token is issued for the requested client id,
  * an unknown client id raises, with the service's own message,

and that the emulator saw exactly the requests the client is documented to send. Prints one
`PASS: …` or `FAIL: …` line per check and exits with the number of failures.

Only run it inside a network namespace that has nothing but loopback (run.sh does that).
"""

import argparse
import base64
import json
import logging
import os
import sys
import time
import urllib.parse
import urllib.request

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential

SCOPE = "https://vault.azure.net/.default"
RESOURCE = "https://vault.azure.net"

# Per source: the message the real service puts in its answer for an unknown identity, and
# what the client must have sent.
EXPECTED = {
    "imds": {
        "unknown_message": "Identity not found",
        "api_version": "2018-02-01",
        "header": ("metadata", "true"),
    },
    "app-service": {
        "unknown_message": "Unable to load the proper Managed Identity.",
        "api_version": "2019-08-01",
        "header": ("x-identity-header", None),  # value checked against IDENTITY_HEADER
    },
}


def claims_of(token):
    """Decodes the middle segment of a JWT-shaped token."""
    segment = token.split(".")[1]
    segment += "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(segment))


def control_base(source):
    """The emulator's base URL, from the variables its `export` lines set."""
    if source == "imds":
        url = os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    else:
        url = os.environ["IDENTITY_ENDPOINT"]
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(f"refusing to talk to non-loopback {parts.hostname!r}")
    return f"{parts.scheme}://{parts.netloc}"


def recorded(base):
    """The emulator's record of requests, read without any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base}/__emulator/requests", timeout=10) as resp:
        return json.load(resp)


def clear_recorded(base):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(f"{base}/__emulator/requests", method="DELETE")
    with opener.open(req, timeout=10):
        pass


def query_of(request):
    return dict(urllib.parse.parse_qsl(request["query"], keep_blank_values=True))


def header_of(request, name):
    for key, value in request["headers"]:
        if key == name:
            return value
    return None


def check_request(source, request, client_id):
    """Asserts one recorded request is what the client is documented to send."""
    want = EXPECTED[source]
    assert request["method"] == "GET", request["method"]
    query = query_of(request)
    assert query.get("api-version") == want["api_version"], query
    assert query.get("resource") == RESOURCE, query
    assert query.get("client_id") == client_id, f"client_id {query.get('client_id')!r}, expected {client_id!r}"
    name, value = want["header"]
    if value is None:
        value = os.environ["IDENTITY_HEADER"]
    assert header_of(request, name) == value, f"header {name}: {header_of(request, name)!r}"


def run_check(name, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
        print(f"FAIL: {name}: {type(e).__name__}: {e}", flush=True)
        return False
    print(f"PASS: {name}", flush=True)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", choices=sorted(EXPECTED), required=True)
    parser.add_argument("--system-client-id", required=True)
    parser.add_argument("--user-assigned-client-id", required=True)
    parser.add_argument("--unknown-client-id", required=True)
    args = parser.parse_args()
    # Failed get_token calls log warnings; the checks below report them instead.
    logging.getLogger("azure").setLevel(logging.CRITICAL)

    base = control_base(args.source)
    source = args.source

    def token_for(client_id, expected_appid):
        clear_recorded(base)
        kwargs = {"client_id": client_id} if client_id else {}
        before = int(time.time())
        token = ManagedIdentityCredential(**kwargs).get_token(SCOPE)
        claims = claims_of(token.token)
        assert claims["aud"] == RESOURCE, claims["aud"]
        assert claims["appid"] == expected_appid, f"appid {claims['appid']!r}, expected {expected_appid!r}"
        lifetime = token.expires_on - before
        assert 86_000 <= lifetime <= 86_500, f"expires_on is {lifetime} s away"
        requests = recorded(base)
        assert len(requests) == 1, f"{len(requests)} requests recorded"
        assert requests[0]["status"] == 200, requests[0]["status"]
        check_request(source, requests[0], client_id)

    def unknown_identity_raises():
        clear_recorded(base)
        try:
            ManagedIdentityCredential(client_id=args.unknown_client_id).get_token(SCOPE)
        except (CredentialUnavailableError, ClientAuthenticationError) as e:
            message = str(e)
            want = EXPECTED[source]["unknown_message"]
            assert want in message, f"{want!r} not in {message!r}"
        else:
            raise AssertionError("get_token succeeded for an identity the emulator does not have")
        requests = recorded(base)
        assert len(requests) == 1, f"{len(requests)} requests recorded (a 400 is not retried)"
        assert requests[0]["status"] == 400, requests[0]["status"]
        check_request(source, requests[0], args.unknown_client_id)

    results = [
        run_check(f"{source}: system-assigned token", lambda: token_for(None, args.system_client_id)),
        run_check(
            f"{source}: user-assigned token by client_id",
            lambda: token_for(args.user_assigned_client_id, args.user_assigned_client_id),
        ),
        run_check(f"{source}: unknown identity raises as the service makes it", unknown_identity_raises),
    ]
    return results.count(False)


if __name__ == "__main__":
    sys.exit(main())

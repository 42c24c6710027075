"""Microsoft's own client must accept the emulator.

Runs azure.identity.ManagedIdentityCredential (azure-identity 1.27.0, msal 1.39.0) against
an azmi-emulator whose `export` lines are already in the environment, and checks that:

  * a system-assigned token is issued for the system identity,
  * a user-assigned token is issued for the requested client id,
  * an unknown client id raises, with the service's own message,

(on Cloud Shell, which has no user-assigned identities: the signed-in user's token is issued, a
client id is refused before any request, and a 503 is retried; on Service Fabric: a token over
the pinned self-signed certificate, a client id refused, and another thumbprint refused before
any request),

and that the emulator saw exactly the requests the client is documented to send. With
`--source entra`: a client secret gets a token from the emulator's https Entra endpoint, and a
wrong one raises with the service's AADSTS code. Prints one
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
from azure.identity import (
    ClientSecretCredential,
    CredentialUnavailableError,
    EnvironmentCredential,
    ManagedIdentityCredential,
)

SCOPE = "https://vault.azure.net/.default"
RESOURCE = "https://vault.azure.net"

# Per source: the message the real service puts in its answer for an unknown identity, and
# what the client must have sent: the method, the api-version (None: no query at all), the
# header that authenticates it (a value of None names the variable holding it), and the query
# parameter that carries a user-assigned client id (None: the source has no user-assigned
# identities, and the client must refuse one before sending anything).
EXPECTED = {
    "imds": {
        "unknown_message": "Identity not found",
        "method": "GET",
        "api_version": "2018-02-01",
        "header": ("metadata", "true"),
        "client_param": "client_id",
    },
    "app-service": {
        "unknown_message": "Unable to load the proper Managed Identity.",
        "method": "GET",
        "api_version": "2019-08-01",
        "header": ("x-identity-header", "IDENTITY_HEADER"),
        "client_param": "client_id",
    },
    "azure-ml": {
        "unknown_message": "Unable to load the proper Managed Identity.",
        "method": "GET",
        "api_version": "2017-09-01",
        "header": ("secret", "MSI_SECRET"),
        "client_param": "clientid",
    },
    "arc": {
        "unknown_message": "The requested user-assigned identity is not assigned to this machine",
        "method": "GET",
        "api_version": "2020-06-01",
        "header": ("metadata", "true"),
        "client_param": "client_id",
        # The challenge, then the request with the key; an unknown identity gets a 404.
        "statuses": [401, 200],
        "unknown_statuses": [401, 404],
    },
    "cloud-shell": {
        "unknown_message": None,
        "method": "POST",
        "api_version": None,
        "header": ("metadata", "true"),
        "client_param": None,
    },
    "service-fabric": {
        "unknown_message": None,
        "method": "GET",
        "api_version": "2019-07-01-preview",
        "header": ("secret", "IDENTITY_HEADER"),
        "client_param": None,
    },
}

# Where the Azure Arc agent keeps its key files (Linux), and where run.sh makes the emulator
# write them, inside a private mount namespace.
ARC_TOKEN_DIR = "/var/opt/azcmagent/tokens"

# The application the emulated Cloud Shell issues the signed-in user's token through
# (emulator/src/cloud_shell.rs, PORTAL_APP_ID): Cloud Shell tokens are not a managed identity's.
CLOUD_SHELL_APP_ID = "00000000-0000-0000-0000-0000000000c4"


def claims_of(token):
    """Decodes the middle segment of a JWT-shaped token."""
    segment = token.split(".")[1]
    segment += "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(segment))


def control_base(source, control):
    """The emulator's plain-http base URL: `control` (its ready line names it), else from the
    variables its `export` lines set."""
    if control:
        url = control
    elif source == "imds":
        url = os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    elif source in ("cloud-shell", "azure-ml"):
        url = os.environ["MSI_ENDPOINT"]
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


def push_fault(base, fault):
    """Queues a fault in the emulator's compact syntax, e.g. `status=503,times=1`."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(f"{base}/__emulator/faults", data=fault.encode(), method="POST")
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
    assert request["method"] == want["method"], request["method"]
    query = query_of(request)
    if want["api_version"] is None:
        # Cloud Shell: no query, the resource in a form body.
        assert request["query"] == "", request["query"]
        form = dict(urllib.parse.parse_qsl(request["body"], keep_blank_values=True))
        assert form == {"resource": RESOURCE}, form
        content_type = header_of(request, "content-type") or ""
        assert content_type.startswith("application/x-www-form-urlencoded"), content_type
    else:
        assert query.get("api-version") == want["api_version"], query
        assert query.get("resource") == RESOURCE, query
        name = want["client_param"]
        if name is not None:
            assert query.get(name) == client_id, f"{name} {query.get(name)!r}, expected {client_id!r}"
        assert request["scheme"] == ("https" if source == "service-fabric" else "http"), request["scheme"]
    name, value = want["header"]
    if value != "true":
        value = os.environ[value]
    assert header_of(request, name) == value, f"header {name}: {header_of(request, name)!r}"
    if source == "arc" and request["status"] != 401:
        # The second leg: the key file's raw contents, read from the agent's token directory.
        authorization = header_of(request, "authorization") or ""
        assert authorization.startswith("Basic "), authorization[:6]
        key = authorization[len("Basic "):]
        keys = [open(os.path.join(ARC_TOKEN_DIR, name)).read() for name in os.listdir(ARC_TOKEN_DIR)]
        assert key in keys, "the key is none of the agent directory's key files"


def run_check(name, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
        print(f"FAIL: {name}: {type(e).__name__}: {e}", flush=True)
        return False
    print(f"PASS: {name}", flush=True)
    return True


def entra_checks(base):
    """Entra with a client secret (`--source entra`): the emulator's https authority, trusted
    through REQUESTS_CA_BUNDLE, with MSAL's instance discovery off (there is no
    login.microsoftonline.com here); its tenant discovery reads the emulator's OpenID
    configuration."""
    tenant = os.environ["AZURE_TENANT_ID"]
    client_id = os.environ["AZURE_CLIENT_ID"]
    authority = os.environ["AZURE_AUTHORITY_HOST"]
    assert authority.startswith("https://127.0.0.1:"), authority

    def secret_token():
        clear_recorded(base)
        token = EnvironmentCredential(disable_instance_discovery=True).get_token(SCOPE)
        claims = claims_of(token.token)
        assert claims["aud"] == RESOURCE, claims["aud"]
        assert claims["appid"] == client_id, claims["appid"]
        posts = [r for r in recorded(base) if r["method"] == "POST"]
        assert len(posts) == 1, f"{len(posts)} token requests"
        post = posts[0]
        assert post["scheme"] == "https", post["scheme"]
        assert post["path"] == f"/{tenant}/oauth2/v2.0/token", post["path"]
        form = dict(urllib.parse.parse_qsl(post["body"]))
        assert form["grant_type"] == "client_credentials", form
        assert form["client_id"] == client_id, form
        assert form["scope"] == SCOPE, form
        assert form["client_secret"] == os.environ["AZURE_CLIENT_SECRET"]

    def wrong_secret_raises():
        clear_recorded(base)
        credential = ClientSecretCredential(tenant, client_id, "wrong-secret", disable_instance_discovery=True)
        try:
            credential.get_token(SCOPE)
        except ClientAuthenticationError as e:
            assert "AADSTS7000215" in str(e), str(e)
        else:
            raise AssertionError("get_token succeeded with a wrong secret")

    results = [
        run_check("entra: a token with a client secret over https (EnvironmentCredential)", secret_token),
        run_check("entra: a wrong client secret raises with AADSTS7000215", wrong_secret_raises),
    ]
    return results.count(False)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", choices=sorted([*EXPECTED, "entra"]), required=True)
    parser.add_argument("--system-client-id", required=True)
    parser.add_argument("--user-assigned-client-id", required=True)
    parser.add_argument("--unknown-client-id", required=True)
    parser.add_argument("--control", default=None, help="the emulator's plain-http base URL")
    args = parser.parse_args()
    # Failed get_token calls log warnings; the checks below report them instead.
    logging.getLogger("azure").setLevel(logging.CRITICAL)

    base = control_base(args.source, args.control)
    source = args.source
    if source == "entra":
        return entra_checks(base)

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
        statuses = [r["status"] for r in requests]
        assert statuses == EXPECTED[source].get("statuses", [200]), f"statuses {statuses}"
        for request in requests:
            check_request(source, request, client_id)

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
        statuses = [r["status"] for r in requests]
        want = EXPECTED[source].get("unknown_statuses", [400])
        assert statuses == want, f"statuses {statuses}, expected {want} (not retried)"
        for request in requests:
            check_request(source, request, args.unknown_client_id)

    def user_assigned_refused():
        # Cloud Shell and Service Fabric have no user-assigned identities: the client refuses
        # one before any request.
        clear_recorded(base)
        try:
            ManagedIdentityCredential(client_id=args.user_assigned_client_id).get_token(SCOPE)
        except (ValueError, ClientAuthenticationError) as e:
            assert "client_id" in str(e), str(e)
        else:
            raise AssertionError(f"get_token succeeded with a client id on {source}")
        requests = recorded(base)
        assert not requests, f"{len(requests)} requests recorded"

    def retried_503_then_token():
        # The standard policy retries a 503; the emulator then issues the user's token.
        clear_recorded(base)
        push_fault(base, "status=503,times=1")
        token = ManagedIdentityCredential().get_token(SCOPE)
        assert claims_of(token.token)["appid"] == CLOUD_SHELL_APP_ID
        requests = recorded(base)
        assert [r["status"] for r in requests] == [503, 200], [r["status"] for r in requests]
        for request in requests:
            check_request(source, request, None)

    def wrong_thumbprint_refused():
        # Another certificate's thumbprint: the pin fails before the Secret header is sent.
        clear_recorded(base)
        real = os.environ["IDENTITY_SERVER_THUMBPRINT"]
        os.environ["IDENTITY_SERVER_THUMBPRINT"] = "00" * 20
        try:
            ManagedIdentityCredential().get_token(SCOPE)
        except Exception as e:  # noqa: BLE001 - msal lets the TLS layer's own error through
            assert "thumbprint does not match" in str(e), f"{type(e).__name__}: {e}"
        else:
            raise AssertionError("get_token succeeded with another certificate's thumbprint")
        finally:
            os.environ["IDENTITY_SERVER_THUMBPRINT"] = real
        requests = recorded(base)
        assert not requests, f"{len(requests)} requests recorded"

    if source == "service-fabric":
        results = [
            run_check(f"{source}: system-assigned token over the pinned certificate", lambda: token_for(None, args.system_client_id)),
            run_check(f"{source}: a user-assigned client id is refused before sending", user_assigned_refused),
            run_check(f"{source}: another thumbprint is refused before any request", wrong_thumbprint_refused),
        ]
        return results.count(False)
    if EXPECTED[source]["client_param"] is None:
        results = [
            run_check(f"{source}: the signed-in user's token", lambda: token_for(None, CLOUD_SHELL_APP_ID)),
            run_check(f"{source}: a user-assigned client id is refused before sending", user_assigned_refused),
            run_check(f"{source}: a 503 is retried, then a token", retried_503_then_token),
        ]
        return results.count(False)
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

"""A real OpenID Provider for the OIDC tests: node's oidc-provider (tests/idp/provider.mjs), started
on a free port with a client whose redirect URI points at the test's live server."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

IDP_DIR = Path(__file__).resolve().parents[1] / "idp"
NODE = shutil.which("node")
CLIENT_ID = "change-control"
CLIENT_SECRET = "a-client-secret-for-tests-only-0123456789"


def missing_oidc() -> str | None:
    if not NODE:
        return "node is not installed"
    if not (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return "oidc-provider is not installed (npm ci in tests/idp)"
    return None


class Provider:
    def __init__(self, redirect_uri: str, users: dict) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pcc-idp-"))
        self.config = self.root / "config.json"
        self.redirect_uri = redirect_uri
        self.users = users
        self.process: subprocess.Popen | None = None
        self.issuer = ""

    def write(self) -> None:
        client = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
        }
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps({"clients": [client], "users": self.users}))
        tmp.replace(self.config)  # atomic: the provider reads it at every login

    def set_groups(self, login: str, groups: list[str]) -> None:
        self.users[login]["groups"] = groups
        self.write()

    def start(self) -> Provider:
        self.write()
        self.log = (self.root / "provider.log").open("w")
        self.process = subprocess.Popen(
            [NODE, str(IDP_DIR / "provider.mjs"), str(self.config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=IDP_DIR,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)  # node starts slowly on a loaded machine; this waits for its line, not a clock
        if not line or not line[0].strip():
            self.log.flush()
            log = (self.root / "provider.log").read_text()[-2000:]
            self.stop()
            raise RuntimeError(f"oidc-provider did not start (exit {self.process.poll()}): {log}")
        self.issuer = json.loads(line[0])["issuer"]
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process and self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


# --- Fixtures (imported by the test modules that use them) ----------------------------------------
USERS = {
    "alice": {
        "password": "alice-idp-pw",
        "sub": "00u-alice-7f3a",
        "email": "alice@plant.test",
        "name": "Alice Anders",
        "preferred_username": "alice",
        "groups": ["mes-release", "qa-pla"],
    },
    "bob": {
        "password": "bob-idp-pw",
        "sub": "00u-bob-91c2",
        "email": "bob@plant.test",
        "name": "Bob Berg",
        "groups": [],
    },
}
DISPLAY_NAME = "Plant SSO"


def _provider(live_server):
    import copy

    # A node process that never says it listens (seen once on a loaded CI machine) gets one more try.
    for attempt in (1, 2):
        try:
            return Provider(f"{live_server.url}/accounts/oidc/callback/", copy.deepcopy(USERS)).start()
        except RuntimeError:
            if attempt == 2:
                raise


def configure(settings, issuer: str) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        "accounts.backends.LocalPasswordBackend",
        "guardian.backends.ObjectPermissionBackend",
        "accounts.oidc.PortalOIDCBackend",
    ]
    settings.OIDC_ISSUER = issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_DISPLAY_NAME = DISPLAY_NAME
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_GROUPS_CLAIM = "groups"

"""A real OpenLDAP server (Debian's slapd) for the LDAP sign-in tests: its own directory, a generated
slapd.conf (mdb backend, suffix dc=plant,dc=test, the memberof overlay), listening on
ldap://127.0.0.1:<free port>, stopped at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.net import free_port, wait_listening

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SUFFIX = "dc=plant,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret"
BIND_DN = f"cn=portal,ou=services,{SUFFIX}"
BIND_PW = "portal-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"


def missing_ldap() -> str | None:
    try:
        import django_auth_ldap  # noqa: F401
        import ldap  # noqa: F401
    except ImportError:
        return "the ldap extra (django-auth-ldap, python-ldap) is not installed"
    if not os.path.exists(SLAPD):
        return "Debian's slapd is not installed"
    if not (MODULE_DIR / "back_mdb.so").exists():
        return "slapd's mdb backend module is missing"
    return None


CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
modulepath {modules}
moduleload back_mdb
moduleload memberof
pidfile {root}/slapd.pid
argsfile {root}/slapd.args

database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {root}/data
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


class Slapd:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pcc-slapd-"))
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Slapd:
        (self.root / "data").mkdir()
        conf = self.root / "slapd.conf"
        conf.write_text(
            CONFIG.format(
                schema=SCHEMA_DIR,
                modules=MODULE_DIR,
                root=self.root,
                suffix=SUFFIX,
                rootdn=ROOT_DN,
                rootpw=ROOT_PW,
            )
        )
        log = (self.root / "slapd.log").open("w")
        # -d 0: stay in the foreground (so the test owns the process), no debug output.
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", f"{self.uri}/", "-d", "0"], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_listening(self.port, process=self.process, name="slapd")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {(self.root / 'slapd.log').read_text()[-2000:]}") from None
        self._seed()
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- Data -----------------------------------------------------------------------------------
    def connect(self):
        import ldap

        conn = ldap.initialize(self.uri)
        conn.simple_bind_s(ROOT_DN, ROOT_PW)
        return conn

    def _add(self, conn, dn: str, attrs: dict) -> None:
        import ldap.modlist

        encoded = {
            key: [v.encode() for v in (value if isinstance(value, list) else [value])]
            for key, value in attrs.items()
        }
        conn.add_s(dn, ldap.modlist.addModlist(encoded))

    def _seed(self) -> None:
        conn = self.connect()
        try:
            self._add(
                conn, SUFFIX, {"objectClass": ["dcObject", "organization"], "dc": "plant", "o": "Plant"}
            )
            for ou in ("people", "groups", "services"):
                self._add(conn, f"ou={ou},{SUFFIX}", {"objectClass": "organizationalUnit", "ou": ou})
            self._add(
                conn,
                BIND_DN,
                {
                    "objectClass": ["person", "simpleSecurityObject"],
                    "cn": "portal",
                    "sn": "portal",
                    "userPassword": BIND_PW,
                },
            )
        finally:
            conn.unbind_s()

    def add_user(self, uid: str, password: str, given: str, surname: str) -> str:
        dn = f"uid={uid},{PEOPLE}"
        conn = self.connect()
        try:
            self._add(
                conn,
                dn,
                {
                    "objectClass": "inetOrgPerson",
                    "uid": uid,
                    "cn": f"{given} {surname}",
                    "givenName": given,
                    "sn": surname,
                    "mail": f"{uid}@plant.test",
                    "userPassword": password,
                },
            )
        finally:
            conn.unbind_s()
        return dn

    def add_group(self, cn: str, members: list[str]) -> str:
        dn = f"cn={cn},{GROUPS}"
        conn = self.connect()
        try:
            self._add(conn, dn, {"objectClass": "groupOfNames", "cn": cn, "member": members or [ROOT_DN]})
        finally:
            conn.unbind_s()
        return dn

    def remove_member(self, group_dn: str, member_dn: str) -> None:
        import ldap

        conn = self.connect()
        try:
            conn.modify_s(group_dn, [(ldap.MOD_DELETE, "member", [member_dn.encode()])])
        finally:
            conn.unbind_s()

    def rename_user(self, old_uid: str, new_uid: str) -> str:
        conn = self.connect()
        try:
            conn.rename_s(f"uid={old_uid},{PEOPLE}", f"uid={new_uid}", delold=1)
        finally:
            conn.unbind_s()
        return f"uid={new_uid},{PEOPLE}"

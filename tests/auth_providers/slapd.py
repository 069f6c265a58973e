"""OpenLDAP's slapd as the test's own process: a temporary slapd.conf (two databases: an OpenLDAP
style tree and an Active Directory style tree with AD's attributes), seeded offline with slapadd,
listening on free loopback ports over plain LDAP and LDAPS (a test CA), run in the foreground so
the test owns it; ldapmodify for changes while it runs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import free_port
from tests.tlsutil import self_signed

HERE = Path(__file__).resolve().parent
SCHEMA_DIR = Path("/etc/ldap/schema")
SLAPD_CANDIDATES = ("/usr/sbin/slapd", "slapd")
ROOT_PW = "root-secret-1"
SVC_PW = "svc-secret-1"
USER_PW = "user-secret-1"
OL_BASE = "dc=example,dc=org"
AD_BASE = "dc=corp,dc=example"
OL_ROOT = f"cn=admin,{OL_BASE}"
AD_ROOT = f"cn=admin,{AD_BASE}"
OL_SVC = f"cn=svc,{OL_BASE}"
AD_SVC = f"cn=svc,{AD_BASE}"
READY_TIMEOUT_S = 15.0


def slapd_binary() -> str | None:
    for c in SLAPD_CANDIDATES:
        found = shutil.which(c)
        if found:
            return found
    return None


def sid(n: int) -> bytes:
    """A binary SID S-1-5-21-1-2-3-<n> (AD's objectSid layout)."""
    subs = [21, 1, 2, 3, n]
    return bytes([1, len(subs)]) + (5).to_bytes(6, "big") + b"".join(
        s.to_bytes(4, "little") for s in subs)


def b64(raw: bytes) -> str:
    import base64
    return base64.b64encode(raw).decode()


def conf(tmp: Path, cert: Path, key: Path) -> str:
    return f"""
include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/inetorgperson.schema
include {SCHEMA_DIR}/nis.schema
include {HERE}/ad_test.schema
pidfile {tmp}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
sizelimit unlimited

database mdb
suffix "{OL_BASE}"
rootdn "{OL_ROOT}"
rootpw {ROOT_PW}
directory {tmp}/ol
maxsize 1073741824
index objectClass eq
index uid,cn,member,memberUid eq
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none

database mdb
suffix "{AD_BASE}"
rootdn "{AD_ROOT}"
rootpw {ROOT_PW}
directory {tmp}/ad
maxsize 1073741824
index objectClass eq
index cn,member,sAMAccountName,userPrincipalName,objectSid eq
access to attrs=userPassword by anonymous auth by self write by * none
access to * by users read by * none
"""


def entry(dn: str, *lines: str) -> str:
    return f"dn: {dn}\n" + "\n".join(lines) + "\n\n"


def ol_seed() -> str:
    """OpenLDAP tree: alice in devs; devs in eng (nested); bob in a group whose name has '=' and
    ','; carol in the posix group by memberUid; dave in nothing."""
    b = OL_BASE
    out = entry(b, "objectClass: dcObject", "objectClass: organization", "o: example",
                "dc: example")
    out += entry(OL_SVC, "objectClass: organizationalRole", "objectClass: simpleSecurityObject",
                 f"userPassword: {SVC_PW}")
    for ou in ("people", "groups"):
        out += entry(f"ou={ou},{b}", "objectClass: organizationalUnit", f"ou={ou}".replace(
            "=", ": "))
    for i, name in enumerate(("alice", "bob", "carol", "dave"), start=1):
        out += entry(f"uid={name},ou=people,{b}", "objectClass: inetOrgPerson",
                     "objectClass: posixAccount", f"uid: {name}", f"cn: {name.title()} Test",
                     f"sn: {name}", f"uidNumber: {1000 + i}", "gidNumber: 1000",
                     f"homeDirectory: /home/{name}", f"userPassword: {USER_PW}")
    # groupOfNames needs a member: the service account holds each group open.
    out += entry(f"cn=devs,ou=groups,{b}", "objectClass: groupOfNames", "cn: devs",
                 f"member: uid=alice,ou=people,{b}", f"member: {OL_SVC}")
    out += entry(f"cn=eng,ou=groups,{b}", "objectClass: groupOfNames", "cn: eng",
                 f"member: cn=devs,ou=groups,{b}")
    out += entry(f"cn=ops\\2C night=shift,ou=groups,{b}", "objectClass: groupOfNames",
                 "cn: ops, night=shift", f"member: uid=bob,ou=people,{b}", f"member: {OL_SVC}")
    out += entry(f"cn=posix,ou=groups,{b}", "objectClass: posixGroup", "cn: posix",
                 "gidNumber: 2000", "memberUid: carol")
    return out


def ad_seed() -> str:
    """AD tree: ann in Developers (memberOf kept as AD keeps it), Developers in Engineering;
    ben disabled (userAccountControl 514); tokenGroups carry the transitive SIDs."""
    b = AD_BASE
    out = entry(b, "objectClass: dcObject", "objectClass: organization", "o: corp", "dc: corp")
    out += entry(AD_SVC, "objectClass: organizationalRole", "objectClass: simpleSecurityObject",
                 f"userPassword: {SVC_PW}")
    for ou in ("Users", "Groups"):
        out += entry(f"ou={ou},{b}", "objectClass: organizationalUnit", f"ou: {ou}")
    dev, eng = f"cn=Developers,ou=Groups,{b}", f"cn=Engineering,ou=Groups,{b}"
    out += entry(dev, "objectClass: groupOfNames", "objectClass: rancherTestAdGroup",
                 "cn: Developers", "sAMAccountName: Developers", f"objectSid:: {b64(sid(1101))}",
                 f"member: cn=Ann Lee,ou=Users,{b}", f"member: cn=Ben Ray,ou=Users,{b}",
                 f"memberOf: {eng}")
    out += entry(eng, "objectClass: groupOfNames", "objectClass: rancherTestAdGroup",
                 "cn: Engineering", "sAMAccountName: Engineering",
                 f"objectSid:: {b64(sid(1102))}", f"member: {dev}")
    for cn, sam, uac in (("Ann Lee", "ann", 512), ("Ben Ray", "ben", 514)):
        out += entry(f"cn={cn},ou=Users,{b}", "objectClass: inetOrgPerson",
                     "objectClass: rancherTestAdUser", f"cn: {cn}", f"sn: {sam}",
                     f"sAMAccountName: {sam}", f"userPrincipalName: {sam}@corp.example",
                     f"userAccountControl: {uac}", f"memberOf: {dev}",
                     f"tokenGroups:: {b64(sid(1101))}", f"tokenGroups:: {b64(sid(1102))}",
                     f"userPassword: {USER_PW}")
    return out


@dataclass
class Slapd:
    tmp: Path
    ldif: dict[str, str] = field(default_factory=dict)  # suffix -> extra seed LDIF
    port: int = 0
    tls_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    ca_pem: str = ""

    def start(self) -> Slapd:
        binary = slapd_binary()
        assert binary, "slapd is not installed (apt-get install slapd ldap-utils)"
        self.tmp.mkdir(parents=True, exist_ok=True)
        for d in ("ol", "ad"):
            (self.tmp / d).mkdir(exist_ok=True)
        cert, key = self_signed(self.tmp, "slapd-test-ca", ["localhost"],
                                ("slapd.crt", "slapd.key"))
        self.ca_pem = cert.read_text()
        cfg = self.tmp / "slapd.conf"
        cfg.write_text(conf(self.tmp, cert, key))
        for base, seed in ((OL_BASE, ol_seed()), (AD_BASE, ad_seed())):
            f = self.tmp / f"seed-{base}.ldif"
            f.write_text(seed + self.ldif.get(base, ""))
            subprocess.run([binary.replace("slapd", "slapadd"), "-q", "-f", str(cfg), "-b", base,
                            "-l", str(f)], check=True, capture_output=True)
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        self._log = open(self.tmp / "slapd.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, "-f", str(cfg), "-h",
             f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/", "-d", "0"],
            stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), 0.2).close()
                return self
            except OSError:
                assert self.proc.poll() is None, (self.tmp / "slapd.log").read_text()
                time.sleep(0.05)
        raise TimeoutError("slapd did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def modify(self, ldif: str, base: str = OL_BASE) -> None:
        root = OL_ROOT if base == OL_BASE else AD_ROOT
        subprocess.run(["ldapmodify", "-x", "-H", f"ldap://127.0.0.1:{self.port}", "-D", root,
                        "-w", ROOT_PW], input=ldif.encode(), check=True, capture_output=True)

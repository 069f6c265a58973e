"""Samba as an Active Directory domain controller, owned by the test: ``samba-tool domain
provision`` into a temporary directory (its own realm, no DNS server, every path under that
directory, not /etc/samba), seeded with ``samba-tool`` (an OU of users and one of groups, a nested
group, a disabled account), then ``samba`` in the foreground with only its LDAP service, bound to
one loopback address of its own (127.x.y.z: LDAP's ports 389 and 636 are fixed in Samba, so the
address is what keeps it apart from anything else on this host) with a test certificate for that
address. Changes while it runs go through ``samba-tool`` on the same database, as an
administrator on the domain controller would make them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REALM = "CORP.EXAMPLE"
DOMAIN = "CORP"
BASE = "DC=corp,DC=example"
ADMIN_PW = "Admin-secret-1!"  # AD's default policy wants three character classes
USER_PW = "User-secret-1!"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE}"
SVC = "svc-rancher"  # an ordinary domain user (no admin rights) as the service account
SVC_PW = "Svc-secret-1!"
SVC_DN = f"CN={SVC},CN=Users,{BASE}"
PEOPLE_OU, GROUPS_OU = "OU=People", "OU=Groups"  # as samba-tool takes them: under the domain
PEOPLE = f"{PEOPLE_OU},{BASE}"
GROUPS = f"{GROUPS_OU},{BASE}"
LDAPS_PORT = 636  # Samba's LDAP server has no port setting
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
TOOL_TIMEOUT_S = 60.0
# name, given name, surname (the entry's CN is "<given> <surname>"), groups, disabled
USERS: tuple[tuple[str, str, str, tuple[str, ...], bool], ...] = (
    ("ann", "Ann", "Lee", ("Developers",), False),
    ("ben", "Ben", "Ray", ("Developers",), True),
    ("cat", "Cat", "Fox", (), False),
)
GROUP_NESTING = (("Engineering", "Developers"),)  # (outer, inner): Developers is in Engineering


def user_dn(name: str) -> str:
    for sam, given, sur, _, _ in USERS:
        if sam == name:
            return f"CN={given} {sur},{PEOPLE}"
    raise KeyError(name)


def group_dn(name: str) -> str:
    return f"CN={name},{GROUPS}"


def missing_tools() -> list[str]:
    return [t for t in ("samba", "samba-tool") if shutil.which(t) is None]


def _free_loopback_address() -> str:
    """A 127.x.y.z address on which LDAPS' port is free (Linux answers the whole 127/8 on lo)."""
    for _ in range(50):
        addr = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((addr, LDAPS_PORT))
            except OSError:
                continue
        return addr
    raise RuntimeError(f"no loopback address with port {LDAPS_PORT} free")


def _certificate(directory: Path, address: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for ``address`` (its own CA): Samba's generated one
    names the DC's host name, which does not resolve here, and the provider verifies names."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "samba-test-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)  # Samba refuses a key others may read
    return cert_path, key_path


@dataclass
class SambaDC:
    tmp: Path
    address: str = ""
    ca_pem: str = ""
    proc: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds

    @property
    def conf(self) -> Path:
        return self.tmp / "dc" / "etc" / "smb.conf"

    @property
    def log_path(self) -> Path:
        return self.tmp / "samba.log"

    def tool(self, *args: str) -> str:
        """``samba-tool <args>`` on this DC's database; its output. Fails with samba-tool's own
        words."""
        out = subprocess.run(["samba-tool", *args, "-s", str(self.conf)], check=False,
                             capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
        if out.returncode != 0:
            raise RuntimeError(f"samba-tool {' '.join(args)}: exit {out.returncode}: "
                               f"{out.stderr.strip()[-2000:]}")
        return out.stdout

    def start(self) -> SambaDC:
        missing = missing_tools()
        assert not missing, (f"{', '.join(missing)} not installed: apt-get install samba "
                             f"(scripts/test.sh does)")
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.address = self.address or _free_loopback_address()
        dc = self.tmp / "dc"
        (dc / "run").mkdir(parents=True, exist_ok=True)
        empty = self.tmp / "empty.conf"  # not /etc/samba/smb.conf: nothing of the host's
        empty.write_text("")
        t0 = time.monotonic()
        out = subprocess.run([
            "samba-tool", "domain", "provision", "-s", str(empty), "--use-rfc2307",
            f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc",
            "--dns-backend=NONE", f"--adminpass={ADMIN_PW}", "--host-name=dc1",
            f"--targetdir={dc}",
            f"--option=interfaces = {self.address}/8", "--option=bind interfaces only = yes",
            "--option=server services = ldap",  # no smbd, kdc, rpc, nbt, dns: LDAP is tested
            f"--option=pid directory = {dc / 'run'}",
            f"--option=log file = {self.tmp / 'log.%m'}",
        ], check=False, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S * 3)
        assert out.returncode == 0, f"samba-tool domain provision failed:\n{out.stderr[-4000:]}"
        self.timings["provision"] = time.monotonic() - t0
        t0 = time.monotonic()
        self._seed()
        self.timings["seed"] = time.monotonic() - t0
        cert, key = _certificate(self.tmp, self.address)
        self.ca_pem = cert.read_text()
        t0 = time.monotonic()
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["samba", "-i", "-M", "single", "-d", "1", "-s", str(self.conf),
             f"--option=tls certfile = {cert}", f"--option=tls keyfile = {key}",
             "--option=tls cafile = "],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.address, LDAPS_PORT), 0.2).close()
                self.timings["start"] = time.monotonic() - t0
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"samba exited {self.proc.returncode}:\n"
                                         f"{self.log_path.read_text()[-4000:]}") from None
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"samba did not listen on {self.address}:{LDAPS_PORT} within "
                           f"{READY_TIMEOUT_S} s:\n{self.log_path.read_text()[-4000:]}")

    def _seed(self) -> None:
        self.tool("user", "create", SVC, SVC_PW)  # into CN=Users, outside the user search base
        self.tool("ou", "add", PEOPLE_OU)
        self.tool("ou", "add", GROUPS_OU)
        for sam, given, sur, _, _ in USERS:
            self.tool("user", "create", sam, USER_PW, f"--userou={PEOPLE_OU}",
                      f"--given-name={given}", f"--surname={sur}")
        groups = sorted({g for u in USERS for g in u[3]} | {
            g for pair in GROUP_NESTING for g in pair})
        for g in groups:
            self.tool("group", "add", g, f"--groupou={GROUPS_OU}")
        for g in groups:
            members = [u[0] for u in USERS if g in u[3]] + [
                inner for outer, inner in GROUP_NESTING if outer == g]
            if members:
                self.tool("group", "addmembers", g, ",".join(members))
        for u in USERS:
            if u[4]:
                self.tool("user", "disable", u[0])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()

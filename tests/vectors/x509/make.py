"""Make the X.509 edge-case vectors of tests/unit/test_vec_x509.c (run once;
the PEM files are committed). Keys are throwaway EC P-256; validity is
fixed dates so the vectors never change meaning; the test passes the
verification time explicitly.

  root.pem          a root CA (2020-01-01 .. 2050-01-01)
  ok.pem            alice: SAN URI sip:alice@example.test, clientAuth, digitalSignature
  expired.pem       the same, valid 2020-01-01 .. 2021-01-01
  eku-server.pem    extendedKeyUsage serverAuth only
  ku-certsign.pem   keyUsage keyCertSign only (no digitalSignature)
  nc-ca.pem         an intermediate, name constraints: email permitted example.test only
  nc-ok.pem         under nc-ca: email alice@example.test
  nc-bad.pem        under nc-ca: email alice@evil.test (outside the constraint)
"""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

here = os.path.dirname(os.path.abspath(__file__))
T0 = datetime.datetime(2020, 1, 1)
T1 = datetime.datetime(2050, 1, 1)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ku(ds=True, cert_sign=False):
    return x509.KeyUsage(digital_signature=ds, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def build(subject, key, issuer, ikey, ca=False, nb=T0, na=T1, san=None, eku=None, kusage=None,
          nc=None, serial=1):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(key.public_key()).serial_number(serial).not_valid_before(nb)
         .not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    b = b.add_extension(kusage if kusage is not None else ku(ds=not ca, cert_sign=ca),
                        critical=True)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if nc:
        b = b.add_extension(nc, critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()),
                        critical=False)
    return b.sign(ikey, hashes.SHA256())


def write(fn, cert):
    with open(os.path.join(here, fn), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


rk = ec.generate_private_key(ec.SECP256R1())
root = build("rtcauth vectors root", rk, "rtcauth vectors root", rk, ca=True)
write("root.pem", root)
alice = [x509.UniformResourceIdentifier("sip:alice@example.test")]
client = [ExtendedKeyUsageOID.CLIENT_AUTH]
k = ec.generate_private_key(ec.SECP256R1())
write("ok.pem", build("alice", k, "rtcauth vectors root", rk, san=alice, eku=client, serial=2))
write("expired.pem", build("alice", k, "rtcauth vectors root", rk, san=alice, eku=client,
                           na=datetime.datetime(2021, 1, 1), serial=3))
write("eku-server.pem", build("alice", k, "rtcauth vectors root", rk, san=alice,
                              eku=[ExtendedKeyUsageOID.SERVER_AUTH], serial=4))
write("ku-certsign.pem", build("alice", k, "rtcauth vectors root", rk, san=alice, eku=client,
                               kusage=ku(ds=False, cert_sign=True), serial=5))
nk = ec.generate_private_key(ec.SECP256R1())
nc = x509.NameConstraints(permitted_subtrees=[x509.RFC822Name("example.test")],
                          excluded_subtrees=None)
write("nc-ca.pem", build("rtcauth vectors constrained CA", nk, "rtcauth vectors root", rk,
                         ca=True, nc=nc, serial=6))
write("nc-ok.pem", build("alice", k, "rtcauth vectors constrained CA", nk,
                         san=alice + [x509.RFC822Name("alice@example.test")], eku=client,
                         serial=7))
write("nc-bad.pem", build("alice", k, "rtcauth vectors constrained CA", nk,
                          san=alice + [x509.RFC822Name("alice@evil.test")], eku=client,
                          serial=8))

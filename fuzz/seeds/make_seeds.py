#!/usr/bin/env python3
"""Writes the committed seed inputs of the fuzz targets (fuzz/seeds/<target>/): a few
valid inputs each, built from the wire formats in docs/PROTOCOL.md, so the fuzzer starts
from inputs that get past the first checks. Deterministic: the same files every run.
Signatures and keys are filler bytes (the decoders check shapes; the targets check that
nothing fuzzed ever verifies). Run it again after a wire format changes:

    python3 fuzz/seeds/make_seeds.py
"""

import io
import os
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MACHINE_ID = "mch_fuzzfuzzfuzzfuzz"  # opkey_fuzz::keys::MACHINE_ID


def write(target, name, data):
    folder = os.path.join(HERE, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- BLE wire grammar (PROTOCOL.md 2.2-2.6) ----------------------------------------


def wstr(s):
    b = s.encode()
    assert len(b) <= 64
    return bytes([len(b)]) + b


def point(fill):
    return b"\x04" + bytes([fill]) * 64


def sig(fill):
    return bytes([fill]) * 64


def grant(key_id="key_aaaaaaaaaaaaaaaa", machines=(MACHINE_ID,), valid=(1_700_000_000, 1_700_600_000)):
    body = b"\x01" + wstr(key_id) + wstr("opr_aaaaaaaaaaaaaaaa") + point(7)
    body += bytes([len(machines)]) + b"".join(wstr(m) for m in machines)
    body += struct.pack(">III", valid[0], valid[1], valid[0]) + b"\x01" + struct.pack(">I", 1)
    return body + sig(9)


def revocations(machine_id=MACHINE_ID, sequence=3, entries=(("key_aaaaaaaaaaaaaaaa", 2),)):
    body = b"\x01" + wstr(machine_id) + struct.pack(">IIH", sequence, 1_700_000_000, len(entries))
    body += b"".join(wstr(k) + struct.pack(">I", s) for k, s in entries)
    return body + sig(5)


def hello():
    return bytes([1, 1]) + wstr(MACHINE_ID) + point(3) + struct.pack(">IHII", 1_700_000_000, 10, 42, 3) + sig(8)


def request(ciphertext_len=120):
    return bytes([1, 2]) + point(4) + bytes(range(ciphertext_len % 256)) + bytes(16)


def fragments(message, mtu=23):
    """PROTOCOL.md 2.5: the first fragment carries 0x80 and the total length."""
    cap = min(mtu - 3, 512)
    first = message[: cap - 3]
    out = [bytes([0x80]) + struct.pack(">H", len(message)) + first]
    rest, index = message[len(first):], 0
    while rest:
        index = (index + 1) & 0x3F
        chunk, rest = rest[: cap - 1], rest[cap - 1:]
        out.append(bytes([index]) + chunk)
    out[-1] = bytes([out[-1][0] | 0x40]) + out[-1][1:]
    return out


def chunked(pieces):
    return b"".join(bytes([len(p)]) + p for p in pieces)


def ble():
    write("ble_reassembly", "hello-mtu23", b"\x00" + chunked(fragments(hello())))
    write("ble_reassembly", "request-mtu185", bytes([81]) + chunked(fragments(request(), 185)))
    write("ble_reassembly", "empty-message", b"\x00" + chunked([b"\xc0\x00\x00"]))
    write("ble_reassembly", "two-messages", b"\x05" + chunked(fragments(b"\x01\x00") + fragments(b"\x01\x04\x11")))

    write("ble_messages", "hello-request", bytes([1, 0]))
    write("ble_messages", "hello", hello())
    write("ble_messages", "request", request())
    write("ble_messages", "result", bytes([1, 3]) + bytes(range(23)))
    write("ble_messages", "error", bytes([1, 4, 17]))
    write("ble_messages", "plaintext-cached", b"\x01" + wstr("key_aaaaaaaaaaaaaaaa") + sig(2))
    write("ble_messages", "plaintext-full-with-list", b"\x12" + grant() + revocations() + sig(2))
    write("ble_messages", "result-plaintext", bytes([0, 0, 120, 0, 0, 0, 1]))

    write("ble_grant", "one-machine", grant())
    write("ble_grant", "three-machines", grant("key_b", ("mch_1", "mch_2", MACHINE_ID)))

    write("ble_revocation", "one-entry", revocations())
    write("ble_revocation", "entirely-and-empty", revocations(entries=(("key_c", 0xFFFFFFFF),)))
    write("ble_revocation", "other-machine", revocations("mch_other", 9, ()))

    # ble_machine: pieces of (control byte, fragment); an odd control sends a Hello first.
    req = fragments(request(), 185)
    write("ble_machine", "hello-then-request", chunked([b"\x01" + req[0]] + [b"\x10" + f for f in req[1:]]))
    write("ble_machine", "hello-request", chunked([b"\x00" + f for f in fragments(bytes([1, 0]))]))
    write("ble_machine", "stale-request", chunked([b"\x00" + f for f in fragments(request(40))]))


# --- Invites (protocol/src/invite.rs) --------------------------------------------------

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def short_code(data):
    symbols = [ALPHABET.index(c) for c in data]
    total = sum((i + 2) * s % 31 for i, s in enumerate(symbols))
    return data + ALPHABET[(31 - total % 31) % 31]


def invites():
    import base64

    token = base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()
    code = short_code("ABCDEFGHJK")
    write("invite", "code", code)
    write("invite", "code-dashed", f"{code[:4]}-{code[4:8]}-{code[8:].lower()}")
    write("invite", "link", f"https://invite.opkey.example/i/{token}")
    write("invite", "link-port-slash", f"  https://INVITE.opkey.example:8443/i/{token}/\n")
    write("invite", "custom-scheme", f"opkey://invite/{token}")
    write("invite", "loopback", f"http://127.0.0.1:8080/i/{token}")
    write("invite", "token", token)


# --- Sync pages (protocol/src/api.rs SyncResponse) --------------------------------------


def sync():
    import base64
    import json

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    t0, t1 = "2026-01-05T09:00:00Z", "2026-02-05T09:00:00+01:00"
    page = {
        "cursor": 42,
        "has_more": False,
        "server_time": t0,
        "operator": {"id": "opr_aaaaaaaaaaaaaaaa", "name": "Jane Doe", "phone": "+4512345678"},
        "organizations": [{"id": "org_aaaaaaaaaaaaaaaa", "name": "Acme Rental"}],
        "keys": [
            {
                "id": "key_aaaaaaaaaaaaaaaa", "organization_id": "org_aaaaaaaaaaaaaaaa",
                "access_type": "digital-key", "operator_id": "opr_aaaaaaaaaaaaaaaa",
                "machine_ids": [MACHINE_ID], "valid_from": t0, "valid_to": t1,
                "description": "site A", "version": 3, "revoked": False,
            },
            {
                "id": "key_bbbbbbbbbbbbbbbb", "organization_id": "org_aaaaaaaaaaaaaaaa",
                "access_type": "rolling-pin", "machine_ids": [MACHINE_ID], "valid_from": t0,
                "valid_to": t1, "version": 1,
                "rolling_pin": {"slot": 7, "algorithm": "sha256", "digits": 6, "period_s": 300},
            },
        ],
        "deleted_key_ids": ["key_cccccccccccccccc"],
        "machines": [
            {
                "id": MACHINE_ID, "organization_id": "org_aaaaaaaaaaaaaaaa", "name": "Excavator 7",
                "serial": "SN-1", "unit_type": "TU700", "keypad": "k300", "ble_public_key": b64(point(3)),
            }
        ],
        "grants": [
            {
                "key_id": "key_aaaaaaaaaaaaaaaa", "serial": 3, "machine_ids": [MACHINE_ID],
                "valid_from": t0, "valid_to": t1, "grant": b64(grant()),
            }
        ],
        "revocations": [{"machine_id": MACHINE_ID, "sequence": 3, "list": b64(revocations())}],
        "issuer_public_key": b64(point(1)),
        "pin_secrets": [
            {"key_id": "key_bbbbbbbbbbbbbbbb", "version": 1, "seed": b64(bytes(range(32)))},
            {"key_id": "key_dddddddddddddddd", "version": 2, "static_pin": "482913"},
        ],
    }
    write("sync_response", "full-page", json.dumps(page, indent=1))
    empty = {k: page[k] for k in ("cursor", "has_more", "server_time", "operator", "organizations")}
    empty.update(keys=[], deleted_key_ids=[], machines=[])
    write("sync_response", "empty-page", json.dumps(empty))
    write("sync_response", "error-body", json.dumps({"error": {"code": "bad_cursor", "message": "start over"}}))


# --- Operator import (server/src/admin/import.rs) ----------------------------------------

CSV_ROWS = [
    ("name", "phone", "access_type"),
    ("Jane Doe", "+45 12 34 56 78", "digital-key"),
    ("Bob", "12345", ""),
    ("Ann", "+4512345679", "Static PIN"),
]

SHEET = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c></row>'
    '<row r="2"><c r="A2" t="inlineStr"><is><t>Jane Doe</t></is></c><c r="B2" t="str"><v>+4512345678</v></c>'
    '<c r="C2" t="s"><v>3</v></c></row>'
    '<row r="4"><c r="A4" t="inlineStr"><is><t>Bob</t></is></c><c r="B4"><v>4512345679</v></c></row>'
    "</sheetData></worksheet>"
)
SHARED = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4" uniqueCount="4">'
    "<si><t>name</t></si><si><t>phone</t></si><si><t>access_type</t></si><si><t>digital-key</t></si></sst>"
)


def workbook_zip(method):
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Operators" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": SHEET,
        "xl/sharedStrings.xml": SHARED,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, text)
    return out.getvalue()


def imports():
    write("import_csv", "template", "name,phone,access_type\nJane Doe,+45 12 34 56 78,digital-key\n")
    write("import_csv", "mixed", "\n".join(",".join(r) for r in CSV_ROWS) + "\n")
    write("import_csv", "semicolons-bom-crlf", b"\xef\xbb\xbf" + "\r\n".join(";".join(r) for r in CSV_ROWS).encode())
    write("import_csv", "tabs-quoted-blank-lines",
          'Phone\tName\n"+4512345678"\t"Doe, ""Jane"""\n\n\n+4512345679\t"two\nlines"\n')
    # import_xlsx: an odd first byte wraps sheet XML NUL shared strings in a workbook; an
    # even one is the file as uploaded.
    write("import_xlsx", "wrapped-sheet", b"\x01" + SHEET.encode() + b"\x00" + SHARED.encode())
    write("import_xlsx", "wrapped-inline-only", b"\x01" + SHEET.replace('t="s"', 't="inlineStr"').encode())
    write("import_xlsx", "file-stored", b"\x00" + workbook_zip(zipfile.ZIP_STORED))
    write("import_xlsx", "file-deflated", b"\x00" + workbook_zip(zipfile.ZIP_DEFLATED))


if __name__ == "__main__":
    ble()
    invites()
    sync()
    imports()

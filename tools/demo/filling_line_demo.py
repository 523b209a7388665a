#!/usr/bin/env python3
"""pingma filling-line demo (充装线演示).

Starts a real pingma-registry on a SQLite file, registers a small sample fleet,
and runs the fill checks a filling-line operator would make, printing every
decision with its reasons in Chinese and English.

    python3 tools/demo/filling_line_demo.py --registry build/registry/pingma-registry
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def today():
    return datetime.datetime.now(SHANGHAI).date()


class Registry:
    def __init__(self, binary, data_dir):
        self.binary = binary
        self.db = os.path.join(data_dir, "registry.db")
        self.proc = None
        self.url = None

    def token(self, role, subject):
        out = subprocess.run(
            [self.binary, "token", "add", "--db", self.db, "--role", role, "--subject", subject],
            check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--db", self.db, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"demo: the registry did not start (it said {line!r})")
        self.url = line[len("listening on "):]

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def call(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


def must(result, what):
    status, body = result
    if status >= 300:
        raise SystemExit(f"demo: {what} failed: {status} {body}")
    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="path to pingma-registry")
    parser.add_argument("--data-dir", default="var/demo",
                        help="where the demo's database goes (emptied first; default var/demo)")
    args = parser.parse_args()

    shutil.rmtree(args.data_dir, ignore_errors=True)
    os.makedirs(args.data_dir)
    reg = Registry(os.path.abspath(args.registry), args.data_dir)
    admin = reg.token("admin", "root")
    company = reg.token("company", "HB-GAS")
    station = reg.token("station", "ST-01")
    inspector = reg.token("inspector", "INSP-1")
    regulator = reg.token("regulator", "SAMR-HB")
    reg.start()
    try:
        run(reg, admin, company, station, inspector, regulator)
    finally:
        reg.stop()
    print()
    verify = subprocess.run([reg.binary, "verify", "--db", reg.db], capture_output=True,
                            text=True)
    print(f"事件哈希链校验 / event hash chain: {verify.stdout.strip() or verify.stderr.strip()}")
    print(f"数据库 / database: {reg.db}")


def run(reg, admin, company, station, inspector, regulator):
    t = today()
    year = datetime.timedelta(days=365)
    print(f"pingma 瓶码 — 充装线演示 / filling-line demo   registry {reg.url}   今天 today {t}")
    print()

    must(reg.call("POST", "/v1/companies", admin, {
        "id": "HB-GAS", "name": "河北示例燃气有限公司",
        "filling_license": {"number": "TS4213001-2027", "valid_until": str(t + 2 * year)}}),
        "company")
    must(reg.call("POST", "/v1/companies", admin, {
        "id": "OTHER-GAS", "name": "其他燃气公司",
        "filling_license": {"number": "TS4213999-2027", "valid_until": str(t + 2 * year)}}),
        "other company")
    must(reg.call("POST", "/v1/stations", company, {
        "id": "ST-01", "company_id": "HB-GAS", "name": "一号充装站", "district": "桥西区"}),
        "station")
    must(reg.call("POST", "/v1/operators", company, {
        "id": "OP-7", "company_id": "HB-GAS", "name": "王师傅",
        "certificate": {"number": "R2-130100-7", "valid_until": str(t + year)}}), "operator")
    must(reg.call("POST", "/v1/operators", company, {
        "id": "OP-9", "company_id": "HB-GAS", "name": "李师傅",
        "certificate": {"number": "R2-130100-9", "valid_until": str(t - datetime.timedelta(days=1))}}),
        "operator with an expired certificate")
    must(reg.call("POST", "/v1/recalls", regulator, {
        "manufacturer": "某某钢瓶厂", "manufactured_from": "2021-01", "manufactured_to": "2021-12",
        "reason": "阀座焊缝缺陷批次 / defective valve-seat welds"}), "recall")

    base = {"model": "YSP35.5", "manufacturer": "河北示例钢瓶厂", "manufactured": "2023-01",
            "tare_kg": 16.4, "last_inspection": "2023-01-15"}
    fleet = [
        dict(base, code="HB0100000001", carriers=["UID:E004015012345678"]),
        dict(base, code="HB0100000002", next_inspection_due=str(t - datetime.timedelta(days=1))),
        dict(base, code="HB0100000003", model="YSP118-II", tare_kg=48.0,
             last_inspection=str(t - year)),
        dict(base, code="HB0100000004", manufactured="2012-03", last_inspection=None),
        dict(base, code="HB0100000005", manufacturer="某某钢瓶厂", manufactured="2021-06",
             last_inspection=str(t - year)),
        dict(base, code="HB0100000006"),
        dict(base, code="HB0100000007"),
        dict(base, code="HB0100000008"),
        dict(base, code="HB0100000009"),
    ]
    for c in fleet:
        c = {k: v for k, v in c.items() if v is not None}
        must(reg.call("POST", "/v1/cylinders", company, c), f"register {c['code']}")
    other = dict(base, code="OT0200000001", owner_company_id="OTHER-GAS")
    must(reg.call("POST", "/v1/cylinders", admin, other), "register OT0200000001")
    print(f"已登记 {len(fleet) + 1} 只气瓶 / registered {len(fleet) + 1} cylinders")
    must(reg.call("POST", "/v1/inspections", inspector, {
        "code": "HB0100000009", "date": str(t - datetime.timedelta(days=3)), "result": "fail",
        "report_no": "JY-2026-0042"}), "failed inspection")
    print()

    checks = [
        ("合格气瓶 / a legal cylinder", "HB0100000001", "OP-7", {}),
        ("扫描公众页二维码 / the public-page QR", "https://pingma.example/c/hb0100000006", "OP-7", {}),
        ("读RFID标签 / the RFID tag", "UID:E004015012345678", "OP-7", {}),
        ("超期未检 / overdue", "HB0100000002", "OP-7", {}),
        ("气液双相 / dual-phase", "HB0100000003", "OP-7", {}),
        ("超年限 / too old", "HB0100000004", "OP-7", {}),
        ("召回批次 / recalled batch", "HB0100000005", "OP-7", {}),
        ("他人产权 / someone else's", "OT0200000001", "OP-7", {}),
        ("黑气瓶 / unregistered", "HB0199999999", "OP-7", {}),
        ("空瓶过轻 / too light", "HB0100000007", "OP-7", {"empty_gross_kg": 15.9}),
        ("螺纹护罩 / threaded shroud", "HB0100000008", "OP-7", {"defects": ["threaded_shroud"]}),
        ("检验不合格 / failed inspection", "HB0100000009", "OP-7", {}),
        ("证书过期 / operator's certificate", "HB0100000006", "OP-9", {}),
    ]
    allowed = blocked = 0
    for title, scan, operator, extra in checks:
        body = dict({"station_id": "ST-01", "operator_id": operator, "scan": scan}, **extra)
        answer = must(reg.call("POST", "/v1/fill-checks", station, body), f"check {scan}")
        code = answer["cylinder"]["code"] if answer["cylinder"] else scan
        if answer["decision"] == "allow":
            allowed += 1
            f = answer["fill"]
            print(f"  ✔ 允许充装 ALLOW  {code:<14} {title}")
            print(f"      目标净重 target {f['target_kg']} kg "
                  f"(下限 min {f['min_kg']}, 上限 max {f['max_kg']}, 皮重 tare {f['tare_kg']})")
        else:
            blocked += 1
            flag = "  → 已标记报废 flagged for scrapping" if answer["flagged_for_scrap"] else ""
            print(f"  ✘ 禁止充装 BLOCK  {code:<14} {title}{flag}")
            for r in answer["reasons"]:
                print(f"      [{r['code']}] {r['message']}")
    print()
    print(f"允许 allowed {allowed}, 禁止 blocked {blocked}")
    queue = must(reg.call("GET", "/v1/scrap-queue", regulator), "scrap queue")["cylinders"]
    print(f"待报废队列 / scrap queue ({len(queue)}): "
          + ", ".join(f"{c['code']} ({c['reason']})" for c in queue))


if __name__ == "__main__":
    sys.exit(main())

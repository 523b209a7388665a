#!/usr/bin/env python3
"""pingma filling-line demo (充装线演示).

The real programs on this machine, on loopback ports: a registry with a sample
fleet, two simulated filling scales (Modbus TCP), and a station agent with two
filling positions — P1 reads a network QR/RFID scanner, P2 a camera's folder. The
demo places each cylinder on a scale and scans it, and prints what the station
decides and weighs. Then the registry is stopped, two cylinders are filled offline,
the registry comes back, the station's outbox drains, and the demo prints one
cylinder's history and the violations the registry found.

    python3 tools/demo/filling_line_demo.py --build build
"""
import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from line_processes import (Registry, ScaleSim, Station, tcp_listen_scanner,  # noqa: E402
                            tcp_scale)

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
# 桥西区, Shijiazhuang, roughly: the courier's delivery area on the map.
DELIVERY_AREA = {"type": "Polygon", "coordinates": [[
    [114.44, 38.00], [114.50, 38.00], [114.50, 38.06], [114.44, 38.06], [114.44, 38.00]]]}
CUSTOMER_AT = {"lat": 38.043, "lon": 114.468}
TERMINAL_PHONE = "13800311003"
CONVERT = "/usr/bin/convert"  # the real ImageMagick
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARE = 16.4


def today():
    return datetime.datetime.now(SHANGHAI).date()


def heading(text):
    print()
    print(f"── {text} " + "─" * max(0, 76 - len(text)))


def show_decision(event, title):
    code = event["cylinder"]["code"] if event.get("cylinder") else event["raw"]
    where = "  [离线判定 offline]" if event.get("offline") else ""
    if event["decision"] == "allow":
        f = event["fill"]
        print(f"  ✔ 允许充装 ALLOW  {code:<14} {title}{where}")
        print(f"      空瓶毛重 empty gross {event['empty_gross_kg']} kg, 目标净重 target "
              f"{f['target_kg']} kg (下限 min {f['min_kg']}, 上限 max {f['max_kg']})")
    else:
        scrap = "  → 已标记报废 flagged for scrapping" if event.get("flagged_for_scrap") else ""
        print(f"  ✘ 禁止充装 BLOCK  {code:<14} {title}{where}{scrap}")
        for r in event["reasons"]:
            print(f"      [{r['code']}] {r['message']}")
        print("      秤保持锁定 / the scale stays locked")


def show_fill(event):
    r = event["record"]
    labels = {"ok": "合格 ok", "overfill": "超装 OVERFILL — 扣留、抽残、复秤 / hold, decant, "
              "re-weigh", "underfill": "欠装 underfill", "interrupted": "中断 interrupted"}
    print(f"      充装 fill: 毛重 gross {r['gross_before_kg']} → {r['gross_after_kg']} kg, "
          f"净重 net {r['net_kg']} kg, 残液 residual {r['residual_kg']} kg: "
          f"{labels[r['result']]}")


def setup(reg, t):
    year = datetime.timedelta(days=365)
    admin = reg.token("admin", "root")
    company = reg.token("company", "HB-GAS")
    station = reg.token("station", "ST-01")
    inspector = reg.token("inspector", "INSP-1")
    regulator = reg.token("regulator", "SAMR-HB")
    reg.start()
    reg.must("POST", "/v1/companies", admin, {
        "id": "HB-GAS", "name": "河北示例燃气有限公司",
        "filling_license": {"number": "TS4213001-2027", "valid_until": str(t + 2 * year)}})
    reg.must("POST", "/v1/companies", admin, {
        "id": "OTHER-GAS", "name": "其他燃气公司",
        "filling_license": {"number": "TS4213999-2027", "valid_until": str(t + 2 * year)}})
    reg.must("POST", "/v1/stations", company, {
        "id": "ST-01", "company_id": "HB-GAS", "name": "一号充装站", "district": "桥西区"})
    reg.must("POST", "/v1/operators", company, {
        "id": "OP-7", "company_id": "HB-GAS", "name": "王师傅",
        "certificate": {"number": "R2-130100-7", "valid_until": str(t + year)}})
    base = {"model": "YSP35.5", "manufacturer": "河北示例钢瓶厂", "manufactured": "2023-01",
            "tare_kg": TARE, "last_inspection": "2023-01-15"}
    fleet = [dict(base, code=f"HB01000000{n:02d}") for n in (1, 6, 7, 8, 9)]
    fleet.append(dict(base, code="HB0100000002",
                      next_inspection_due=str(t - datetime.timedelta(days=1))))
    fleet.append(dict(base, code="HB0100000003", model="YSP118-II", tare_kg=48.0,
                      manufactured="2024-03", last_inspection=str(t - year)))
    fleet[0]["carriers"] = ["UID:E004015012345678"]
    reg.must("POST", "/v1/cylinders/batch", company, {"cylinders": fleet})
    reg.must("POST", "/v1/cylinders", admin, dict(base, code="OT0200000001",
                                                  owner_company_id="OTHER-GAS"))
    print(f"  已登记 {len(fleet) + 1} 只气瓶、1 个充装站、1 名持证充装工 / registered "
          f"{len(fleet) + 1} cylinders, a station and a certified operator")
    courier = reg.token("courier", "CR-3")
    # The delivery range drawn on the map (固定配送范围), and the vehicle's JT/T 808
    # terminal by its phone number.
    reg.must("PUT", "/v1/areas/QX-1", company, {
        "company_id": "HB-GAS", "name": "桥西区配送范围", "geometry": DELIVERY_AREA})
    reg.must("POST", "/v1/vehicles", company, {"id": "V-3", "company_id": "HB-GAS",
                                               "plate": "冀A·D1234",
                                               "terminal": {"phone": TERMINAL_PHONE}})
    reg.must("POST", "/v1/couriers", company, {"id": "CR-3", "company_id": "HB-GAS",
                                               "name": "赵师傅", "vehicle": "V-3",
                                               "zones": ["桥西区", "新华区", "QX-1"]})
    reg.must("POST", "/v1/customers", company, {
        "id": "CU-88", "company_id": "HB-GAS", "name": "张记小吃", "phone": "13912341234",
        "id_number": "11010519491231002X", "address": "桥西区中华北大街 88 号",
        "district": "桥西区", "kind": "restaurant", "location": CUSTOMER_AT,
        "site": {"basement": False, "semi_basement": False, "cylinder_room": True}})
    return {"admin": admin, "station": station, "inspector": inspector,
            "regulator": regulator, "courier": courier, "company": company}


def drive(reg, tokens):
    """V-3's terminal (the JT/T 808 terminal simulator of the tests) registers,
    authenticates and reports its last 20 minutes: out of its area for 7 of them
    (one zone_exit alert), then back to the customer's door."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import asyncio
    import jt808_terminal as jt

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    track = ([(38.02 + 0.002 * i, 114.47) for i in range(5)] +
             [(38.07 + 0.001 * i, 114.47) for i in range(8)] +
             [(38.04, 114.466), (38.0428, 114.4678)])
    times = [now - datetime.timedelta(minutes=20 - i) for i in range(5)] + \
            [now - datetime.timedelta(minutes=14 - i) for i in range(8)] + \
            [now - datetime.timedelta(minutes=3), now - datetime.timedelta(minutes=1)]

    async def report():
        term = jt.Terminal("127.0.0.1", reg.jt808_port, TERMINAL_PHONE, version=2019)
        await term.connect()
        registered = await term.register()
        authenticated = await term.authenticate()
        print(f"  车载终端 terminal {TERMINAL_PHONE} (JT/T 808-2019): 注册 registered "
              f"{'✔' if registered.ok else '✘'}, 鉴权 authenticated "
              f"{'✔' if authenticated.ok else '✘'}")
        ok = 0
        for (lat, lon), at in zip(track, times):
            ok += (await term.report(jt.Position(lat, lon, at, speed_kmh=25.0))).ok
        await term.close()
        return ok

    stored = asyncio.run(report())
    print(f"  位置汇报 0x0200: {stored}/{len(track)} 条已确认 acknowledged")
    latest = reg.must("GET", "/v1/positions/latest", tokens["regulator"])
    for v in latest["vehicles"]:
        print(f"  {v['plate']} ({v['vehicle']}): {v['lat']:.4f}, {v['lon']:.4f}, "
              f"{v['age_s']} s 前 ago, 来源 source {v['source']}")
    alerts = reg.must("GET", "/v1/alerts", tokens["regulator"])["alerts"]
    for a in alerts:
        since = datetime.datetime.fromisoformat(
            a["detail"]["outside_since"].replace("Z", "+00:00")).astimezone(SHANGHAI)
        print(f"  ⚠ 预警 alert {a['kind']}: {a['vehicle']} / {a['courier']} {since:%H:%M} "
              f"起驶出配送范围超过 5 分钟 / left its delivery area at {since:%H:%M} for more "
              "than 5 minutes")


def label_photo(build, work, code):
    """A label from pingma-label, photographed a little askew, soft and grainy."""
    label = os.path.join(work, f"{code}-label.png")
    subprocess.run([os.path.join(build, "tools", "label", "pingma-label"), "--code", code,
                    "--model", "YSP35.5", "--owner", "河北示例燃气有限公司", "--out", label],
                   check=True, capture_output=True)
    photo = os.path.join(work, f"{code}-photo.jpg")
    subprocess.run([CONVERT, label, "-bordercolor", "white", "-border", "40", "-background",
                    "gray70", "-rotate", "11", "-gaussian-blur", "0x1.2", "-seed", "5",
                    "-attenuate", "0.4", "+noise", "Gaussian", "-quality", "70", photo],
                   check=True, capture_output=True)
    return photo


def fill_at(station, sim, position, code, title, tare=TARE, content=0.5, photo=None,
            camera=None):
    sim.clear_platform()
    sim.control(f"place {tare} {content}")
    time.sleep(0.6)  # the platform settles before the operator scans
    if photo:
        # A camera writes under a temporary name and renames when the file is whole.
        tmp = os.path.join(camera, ".incoming.jpg")
        shutil.copy(photo, tmp)
        os.rename(tmp, os.path.join(camera, f"{code}.jpg"))
    else:
        station.scan(position, code)
    decision = station.wait_for(
        lambda e: e["event"] in ("decision", "scan_refused") and e.get("position") == position,
        what=f"a decision on {code}")
    if decision["event"] == "scan_refused":
        print(f"  ! {code}: {decision['why']}")
        return None, None
    show_decision(decision, title)
    if decision["decision"] != "allow":
        return decision, None
    finished = station.wait_for(lambda e: e["event"] == "fill_finished", timeout=120,
                                what=f"the fill of {code}")
    show_fill(finished)
    return decision, finished


def wait_drained(station, timeout=60):
    """The outbox once every recorded fill is at the registry (or the timeout)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        outbox = station.status()["outbox"]
        if not outbox["pending"] and not outbox["checks_pending"]:
            break
        time.sleep(0.2)
    return station.status()["outbox"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build", help="the build directory (default build)")
    parser.add_argument("--data-dir", default="var/demo",
                        help="where the demo's files go (emptied first; default var/demo)")
    parser.add_argument("--flow-kg-s", type=float, default=4.0,
                        help="the simulated scales' flow (default 4 kg/s, for a short demo)")
    parser.add_argument("--serve", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the registry (its console) and the station (its operator's "
                             "screen) serving after the demo until Ctrl-C (default: when run "
                             "from a terminal)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    work = os.path.abspath(args.data_dir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    camera = os.path.join(work, "camera")
    os.makedirs(camera)

    t = today()
    print(f"pingma 瓶码 — 充装线演示 / filling-line demo        今天 today {t}")
    heading("注册中心 / the registry")
    reg = Registry(os.path.join(build, "registry", "pingma-registry"),
                   os.path.join(work, "registry.db"), jt808=True)
    sims, station = [], None
    try:
        tokens = setup(reg, t)
        print(f"  pingma-registry on {reg.url}; JT/T 808 terminals on {reg.jt808_listen}")
        heading("充装站 / the filling station: two positions, two Modbus scales")
        sim_binary = os.path.join(build, "tools", "scale_sim", "pingma-scale-sim")
        sims = [ScaleSim(sim_binary, args.flow_kg_s), ScaleSim(sim_binary, args.flow_kg_s)]
        station = Station(os.path.join(build, "station", "pingma-station"),
                          os.path.join(work, "station"), "ST-01", reg.url, tokens["station"],
                          [("P1", "OP-7", tcp_listen_scanner(), tcp_scale(sims[0])),
                           ("P2", "OP-7", f'{{ kind = "image-dir", dir = "{camera}" }}',
                            tcp_scale(sims[1]))],
                          sync_interval_s=3600)
        station.start()
        synced = station.wait_for(lambda e: e["event"] == "replica_synced", what="a sync")
        print(f"  pingma-station ready; status at {station.status_url}")
        print(f"  P1: 扫码枪 network scanner on {station.scanner_address('P1')}, 秤 scale "
              f"modbus {sims[0].host}:{sims[0].port}")
        print(f"  P2: 相机 camera folder {camera}, 秤 scale modbus {sims[1].host}:{sims[1].port}")
        print(f"  离线副本 offline replica: {synced['cylinders']} cylinders")

        heading("在线充装 / filling online")
        fill_at(station, sims[0], "P1", "HB0100000001", "合格气瓶 / a legal cylinder")
        fill_at(station, sims[0], "P1", "HB0100000002", "超期未检 / overdue for inspection")
        fill_at(station, sims[0], "P1", "OT0200000001", "他人产权 / another company's")
        fill_at(station, sims[0], "P1", "HB0100000003", "气液双相 / dual-phase", tare=48.0)
        fill_at(station, sims[0], "P1", "HB0199999999", "黑气瓶 / unregistered")
        sims[0].control("fault overshoot 0.8")
        fill_at(station, sims[0], "P1", "HB0100000006", "超装 / one that overfills")
        sims[0].control("fault overshoot 0.02")
        photo = label_photo(build, work, "HB0100000007")
        fill_at(station, sims[1], "P2", "HB0100000007", "标签照片 / read from a label photo",
                photo=photo, camera=camera)
        wait_drained(station)

        heading("注册中心停机，离线充装 / the registry stops: filling offline")
        # An inspection failed after the station's last sync: its replica still allows.
        reg.must("POST", "/v1/inspections", tokens["inspector"], {
            "code": "HB0100000009", "date": str(t), "result": "fail",
            "report_no": "JY-2026-0042"})
        print("  检验机构记录 HB0100000009 检验不合格（站端副本尚未同步）/ HB0100000009 failed "
              "its inspection; the station's replica has not synced since")
        reg.stop()
        print("  pingma-registry stopped")
        fill_at(station, sims[0], "P1", "HB0100000008", "合格气瓶 / a legal cylinder")
        fill_at(station, sims[0], "P1", "HB0100000009", "副本未知其检验不合格 / failed, "
                "unknown to the replica")
        fill_at(station, sims[0], "P1", "HB0100000002", "超期未检，离线禁止 / overdue, refused "
                "offline")
        outbox = station.status()["outbox"]
        print(f"  待上传 outbox: {outbox['pending']} fill records and {outbox['checks_pending']} "
              "offline checks waiting")

        heading("注册中心恢复，补传 / the registry is back: the outbox drains")
        reg.start()
        outbox = wait_drained(station)
        print(f"  已上传 uploaded {outbox['uploaded']}, 待上传 pending {outbox['pending']}, "
              f"拒收 rejected {outbox['rejected']}")
        print(f"  离线判定已上传 offline checks uploaded {outbox['checks_uploaded']}, 拒收 rejected "
              f"{outbox['checks_rejected']}: 监管端可见离线禁止 / the regulator sees the offline "
              "refusals")

        heading("送气车辆定位 / the delivery vehicle reports over JT/T 808")
        drive(reg, tokens)

        heading("送气到户与随瓶安检 / delivery to the customer and the door-step check")
        checks = {item: "pass" for item in (
            "hose_length", "hose_joints", "hose_through_wall", "regulator_standard",
            "regulator_age", "gas_alarm", "flame_failure_device", "ventilation",
            "cylinders_apart")}
        hose_too_long = dict(checks, hose_length="fail")
        for code, title, check in (
                ("HB0100000001", "充装合格 / filled and passed", hose_too_long),
                ("HB0100000006", "超装未处理 / the overfilled one", checks)):
            answer = reg.must("POST", "/v1/handovers", tokens["courier"], {
                "event_id": str(uuid.uuid4()), "code": code, "customer_id": "CU-88",
                "vehicle": "V-3", "direction": "deliver", "safety_check": check})
            mark = "✔ 允许交付 DELIVER" if answer["decision"] == "allow" else "✘ 禁止交付 REFUSE"
            print(f"  {mark}  {code:<14} {title} → 张记小吃 (CU-88)")
            for r in answer["reasons"]:
                print(f"      [{r['code']}] {r['message']}")
            for a in answer["alerts"]:
                print(f"      预警 alert {a['kind']}: {a['detail']}")
            for h in answer["hazards_opened"]:
                print(f"      隐患 hazard {h['id']}: {h['code']} ({h['item']}), 整改期限 deadline "
                      f"{h['deadline']}, 责任方 responsible {h['responsible']}")
        hazards = reg.must("GET", "/v1/hazards?state=open", tokens["regulator"])
        print(f"  隐患台账 / hazard ledger: {len(hazards['hazards'])} open")

        heading("公众查询页 / the public page a label's QR opens")
        for code in ("HB0100000001", "HB0100000009"):
            url = f"{reg.url}/c/{code}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                page = resp.read().decode("utf-8")
            verdict = re.search(r'<h1 id="verdict">(.*?)</h1>', page, re.S)
            text = re.sub(r"<[^>]+>", " ", verdict.group(1)) if verdict else "?"
            print(f"  {url}")
            print(f"      {' '.join(text.split())}")

        heading("气瓶履历 / the history of HB0100000009")
        history = reg.must("GET", "/v1/cylinders/HB0100000009/history", tokens["regulator"])
        for e in history["events"]:
            extra = ""
            if e["type"] == "fill":
                extra = f"net {e['net_kg']} kg, {e['result']}, offline {e.get('offline', False)}"
            elif e["type"] == "inspection":
                extra = f"{e.get('result')} ({e.get('report_no')})"
            elif e["type"] == "violation":
                extra = (f"registry would have {e['registry_decision']}ed: "
                         f"{', '.join(e['reasons'])}")
            elif e["type"] == "fill_check":
                extra = f"{e.get('decision')}"
            print(f"  {e['at']}  {e['type']:<12} {e['actor']['role']}:{e['actor']['id']:<8} "
                  f"{extra}")
        heading("违规 / violations the registry found")
        found = 0
        for code in ("HB0100000001", "HB0100000006", "HB0100000007", "HB0100000008",
                     "HB0100000009"):
            events = reg.must("GET", f"/v1/cylinders/{code}/history", tokens["regulator"])
            for e in events["events"]:
                if e["type"] == "violation":
                    found += 1
                    print(f"  ⚠ {code}: 离线充装，注册中心判定应禁止 / filled offline, the registry "
                          f"would have blocked: {', '.join(e.get('reasons', []))}"
                          if "registry_decision" in e else
                          f"  ⚠ {code}: {e.get('result_reported')} → {e.get('result_by_weight')}")
        print(f"  {found} violation(s)")

        heading("监管控制台 / the regulator's console")
        stats = reg.must("GET", f"/v1/stats/fill-checks?from={t}&to={t}&group_by=reason",
                         tokens["regulator"])
        print(f"  今日充装检查 fill checks today: {stats['total']['checks']}, "
              f"禁止 refused: {stats['total']['refused']}")
        for g in stats["groups"]:
            print(f"      {g['key']:<28} {g['refused']}")
        queue = reg.must("GET", "/v1/scrap-queue", tokens["regulator"])
        print(f"  待报废 scrap queue: {', '.join(c['code'] for c in queue['cylinders'])}")
        print(f"  控制台 console:      {reg.url}/console/   (监管令牌 regulator token "
              f"{tokens['regulator']})")
        print(f"  车辆地图 map:        {reg.url}/console/#map/V-3   (同一监管令牌 the same "
              "regulator token)")
        print(f"  送气工页面 courier:  {reg.url}/courier/   (送气工令牌 courier token "
              f"{tokens['courier']})")
        print(f"  公众查询 public page: {reg.url}/c/HB0100000001")
        print(f"  操作屏 operator's screen: {station.screen_url}   (工位 position P1: "
              f"{station.screen_url}p/P1)")

        heading("联锁记录 / the scales' interlock logs")
        for name, sim in zip(("P1", "P2"), sims):
            s = sim.status()
            unlocks = sum(1 for w in s["interlock_writes"] if w["value"] == 1)
            verdict = ("每次解锁对应一次允许的充装，被禁气瓶从未解锁 / one unlock per allowed fill: "
                       "no blocked cylinder was unlocked" if unlocks == s["fills"] else
                       "解锁次数与充装次数不符 / unlocks and fills differ")
            print(f"  {name}: {s['fills']} fills, {unlocks} unlock writes — {verdict}")
        if args.serve or (args.serve is None and sys.stdin.isatty()):
            heading("注册中心与充装站继续运行 / the registry and the station keep serving")
            print(f"  打开 open {reg.url}/console/ 与 and {station.screen_url} ; "
                  "按 Ctrl-C 结束 / press Ctrl-C to end")
            sims[0].clear_platform()
            sims[0].control("place 16.4 0.5")
            print("  P1 秤上已放一只空瓶；扫码即可看到操作屏变化 / an empty cylinder is on P1's "
                  "scale: scan it and watch the screen:")
            for code, what in (("HB0100000008", "允许 allowed"), ("HB0100000002", "禁止 blocked")):
                print(f"      echo {code} | socat - TCP:{station.scanner_address('P1')}   # {what}")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print()
        else:
            print()
            print("  (这些网址随演示结束而关闭；加 --serve 可保持运行 / these URLs close with the "
                  "demo; run it with --serve to keep them open)")
    finally:
        if station:
            station.stop()
        for sim in sims:
            sim.stop()
        reg.stop()
    verify = subprocess.run([reg.binary, "verify", "--db", reg.db], capture_output=True,
                            text=True)
    heading("事件哈希链 / the event hash chain")
    print(f"  {verify.stdout.strip() or verify.stderr.strip()}")
    print(f"  数据 / files: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

// The regulator's console: any cylinder's record and whole life, the scrap queue,
// refused fills with charts and ledgers, hazards, reports from the public, the
// stations (with the remote lock), what is coming due and the delivery map
// (map.js). It only reads the API, except for locking and unlocking a station. A
// company's token sees its own records and map, without the public's reports and
// the stations' lock. Every text from the network goes into the page as text
// (textContent, attributes), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "pingma.console.token";
  const ROLE_KEY = "pingma.console.role"; // "regulator" (or admin) or "company"
  // The tabs a company's token does not reach (regulators' reads and the lock).
  const REGULATOR_TABS = ["reports", "stations"];
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // ---- words -------------------------------------------------------------------

  // Reason codes: fill checks (common/src/domain.cpp) and handovers (delivery.cpp).
  const REASONS = {
    UNKNOWN_CODE: ["未登记的气瓶（黑气瓶）", "Unregistered cylinder"],
    NOT_OWNED: ["非自有且无托管协议", "Not owned and no custody agreement"],
    INSPECTION_OVERDUE: ["超期未检", "Inspection overdue"],
    INSPECTION_FAILED: ["定期检验不合格", "Failed periodic inspection"],
    SERVICE_LIFE_EXCEEDED: ["超出设计使用年限", "Past its service life"],
    ASSESSMENT_FAILED: ["安全评估不合格", "Failed its safety assessment"],
    DUAL_PHASE_BANNED: ["气液双相气瓶禁止充装", "Dual-phase cylinders are banned"],
    RECALLED: ["产品黑名单（召回）", "On the recall list"],
    SCRAP_PENDING: ["待报废", "Flagged for scrapping"],
    SCRAPPED: ["已报废", "Scrapped"],
    DEFECT_FOUND: ["充装前检查发现缺陷", "Pre-fill check found a defect"],
    TARE_MISMATCH: ["空瓶重量与钢印皮重不符", "Empty weight below stamped tare"],
    CLONE_SUSPECTED: ["疑似克隆码", "Suspected cloned code"],
    STATION_LICENSE_INVALID: ["充装许可无效或充装站被锁定", "Filling licence invalid or station locked"],
    OPERATOR_NOT_CERTIFIED: ["充装人员无有效作业证书", "Operator not certified"],
    MODEL_UNKNOWN: ["充装政策中无此型号", "Model not in the filling policy"],
    NOT_FILLED_SINCE_DELIVERY: ["未充装", "Not filled"],
    FILL_NOT_PASSED: ["充装后检查未通过", "Post-fill check not passed"],
    FILL_NOT_BY_OWNER: ["非产权单位充装", "Not filled by its owner"],
    FILL_STATION_UNLICENSED: ["充装站无有效许可", "Filling station not licensed"],
    COURIER_NOT_OWNER: ["送气工非产权单位人员", "Courier not of the owner"],
    VEHICLE_MISMATCH: ["人车不对应", "Vehicle mismatch"],
    OUTSIDE_ZONE: ["超出配送区域", "Outside the delivery zone"],
    BASEMENT_SITE: ["地下或半地下场所", "Basement site"],
    NO_CYLINDER_ROOM: ["超量存放无气瓶间", "No cylinder room"],
    YSP118_INDOORS: ["YSP118不得室内使用", "YSP118 indoors"],
    NOT_AT_CUSTOMER: ["不在该用户处", "Not at this customer"],
  };
  const HAZARDS = {
    HOSE_TOO_LONG: ["胶管超过2米", "Hose longer than 2 m"],
    HOSE_JOINTS: ["胶管有接头", "Hose has joints"],
    HOSE_THROUGH_WALL: ["胶管穿墙穿楼板", "Hose through a wall or floor"],
    REGULATOR_NOT_STANDARD: ["减压阀不合标准", "Regulator not to standard"],
    REGULATOR_EXPIRED: ["减压阀超期使用", "Regulator past its service life"],
    NO_GAS_ALARM: ["未装燃气报警器", "No gas alarm"],
    NO_FLAME_FAILURE_DEVICE: ["灶具无熄火保护", "No flame-failure device"],
    POOR_VENTILATION: ["通风不良", "Poor ventilation"],
    CYLINDERS_NOT_APART: ["备用瓶与在用瓶未分开", "Spare and in-use cylinders together"],
  };
  const REPORT_CATEGORIES = {
    suspected_fake: ["标签或二维码疑似伪造", "Label or QR looks forged"],
    damaged: ["瓶体损坏、锈蚀或变形", "Damaged, corroded or deformed"],
    leak: ["漏气或有异味", "Gas leak or smell"],
    short_weight: ["充装量不足（缺斤短两）", "Short weight"],
    illegal_seller: ["无证经营或私自充装", "Unlicensed seller or illegal refilling"],
    out_of_date: ["超期未检或报废气瓶仍在使用", "Overdue or scrapped cylinder in use"],
    other: ["其他问题", "Something else"],
  };
  const STATES = {
    active: ["在用", "Active", "ok"],
    scrap_pending: ["待报废", "Flagged for scrapping", "unknown"],
    scrapped: ["已报废（登记注销）", "Scrapped (registration cancelled)", "bad"],
  };
  const ROLES = {
    admin: "管理员", company: "充装单位", station: "充装站", inspector: "检验机构",
    courier: "送气工", regulator: "监管部门", public: "群众", registry: "登记系统",
  };

  function reasonText(code) {
    const r = REASONS[code];
    return r ? r[0] + " " + code : code;
  }

  // ---- DOM helpers ---------------------------------------------------------------

  const { el, en, clear, ApiError } = window.pingma;
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString("zh-CN", { hour12: false });
  }
  function badge(zh, enText, tone) {
    return el("span", { class: "badge " + (tone || "neutral") }, zh + " ", el("span", { lang: "en", class: "inline-en", text: enText }));
  }
  function codeLink(code) {
    const a = el("a", { href: "#cylinder/" + encodeURIComponent(code), class: "code-link mono", text: code });
    return a;
  }
  // A table: columns [[zh, en]], rows of cells (node or text); rowClass(row index).
  function table(columns, rows, rowAttrs) {
    const thead = el("thead", {}, el("tr", {}, ...columns.map(([zh, e]) => el("th", { scope: "col" }, zh, e ? en(e) : null))));
    const tbody = el("tbody");
    rows.forEach((cells, i) => {
      const tr = el("tr", rowAttrs ? rowAttrs(i) : {});
      for (const c of cells) tr.appendChild(el("td", {}, c === undefined || c === null ? "—" : c));
      tbody.appendChild(tr);
    });
    return el("table", {}, thead, tbody);
  }
  function emptyNote(zh, enText) {
    return el("p", { class: "sub empty" }, zh + " ", el("span", { lang: "en", class: "inline-en", text: enText }));
  }

  function showError(zh, enText) {
    const box = $("error");
    clear(box);
    box.appendChild(el("strong", { text: zh }));
    if (enText) box.appendChild(en(enText));
    box.hidden = false;
  }
  function hideError() {
    $("error").hidden = true;
  }

  // ---- the API -------------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }
  function role() {
    return sessionStorage.getItem(ROLE_KEY) || "regulator";
  }

  // The Response of a 2xx (for downloads), or an ApiError.
  function request(method, path, options) {
    options = options || {};
    return window.pingma.call(method, path, options.token || token(), options);
  }
  // The decoded body of a 2xx, or an ApiError.
  async function api(method, path, options) {
    return window.pingma.json(await request(method, path, options));
  }

  function explain(e) {
    if (!(e instanceof ApiError)) return ["出错了", String(e)];
    switch (e.status) {
      case 0:
        return ["网络不通，未能连接登记系统。", "No connection to the registry: " + e.message];
      case 401:
        return ["令牌无效或已失效，请重新登录。", "The token is not valid: sign in again. " + e.message];
      case 403:
        return ["此令牌无权查看（需要监管令牌）。", "This token may not do that (a regulator token is needed). " + e.message];
      case 404:
        return ["未找到。", "Not found: " + e.message];
      case 503:
        return ["该功能暂不可用（登记系统尚未提供）。", "Not available yet (503): " + e.message];
      default:
        return ["请求未成功（" + e.status + " " + e.code + "）", e.message];
    }
  }
  // A failure shown where the data would have been, and at the top for 401.
  function failInto(node, e) {
    const [zh, enText] = explain(e);
    if (node) {
      clear(node);
      node.appendChild(el("div", { class: "error-box", role: "alert", "data-status": e.status },
        el("strong", { text: zh }), en(enText)));
    } else {
      showError(zh, enText);
    }
    if (e instanceof ApiError && e.status === 401) {
      showError(zh, enText);
      signOut(true);
    }
  }

  // ---- sign-in, audit ----------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    hideError();
    const value = $("token").value.trim();
    if (!value) {
      showError("请输入令牌。", "Enter your token.");
      return;
    }
    let who = "regulator";
    try {
      await api("GET", "/v1/audit/head", { token: value });
      // Only regulators (and admins) read the public's reports: the role check. A
      // company's token reads its own vehicles, and no station's or inspector's does.
      await api("GET", "/v1/reports?limit=1", { token: value }).catch(async (e) => {
        if (e.status === 503) return;
        if (e.status !== 403) throw e;
        await api("GET", "/v1/vehicles?limit=1", { token: value }).catch(() => {
          throw e;
        });
        who = "company";
      });
    } catch (e) {
      const [zh, enText] = explain(e);
      showError(zh, enText);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    sessionStorage.setItem(ROLE_KEY, who);
    $("token").value = "";
    start();
  }

  function signOut(expired) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ROLE_KEY);
    window.pingmaMap.reset();
    for (const p of document.querySelectorAll(".panel")) p.hidden = true;
    $("tabs").hidden = true;
    $("audit").hidden = true;
    $("sign-out").hidden = true;
    $("signin").hidden = false;
    if (!expired) hideError();
    $("token").focus();
  }

  async function loadAudit() {
    const box = $("audit");
    clear(box);
    box.hidden = false;
    try {
      const a = await api("GET", "/v1/audit/head");
      const v = a.verified || {};
      const state = v.state || "not_run";
      const words = {
        ok: ["哈希链已验证", "chain verified", "ok"],
        running: ["哈希链校验中", "chain check running", "unknown"],
        broken: ["哈希链断裂！", "CHAIN BROKEN", "bad"],
        error: ["哈希链校验出错", "chain check failed", "bad"],
        not_run: ["哈希链未校验", "chain not checked", "unknown"],
      }[state] || [state, state, "unknown"];
      box.className = "audit " + words[2];
      box.setAttribute("data-state", state);
      box.appendChild(el("strong", { text: words[0] }));
      box.appendChild(el("span", { lang: "en", class: "inline-en", text: " " + words[1] }));
      box.appendChild(document.createTextNode(" · 事件 " + a.length + " events · 链头 head "));
      box.appendChild(el("span", { class: "mono", title: a.head || "", text: a.head ? a.head.slice(0, 12) + "…" : "—" }));
      if (v.finished_at) box.title = "校验于 checked at " + when(v.finished_at) + "，覆盖 covers " + (v.length || 0) + " events" + (v.message ? " · " + v.message : "");
      else if (v.message) box.title = v.message;
    } catch (e) {
      box.className = "audit bad";
      box.textContent = explain(e)[0];
      if (e.status === 401) failInto(null, e);
    }
  }

  // ---- tabs ----------------------------------------------------------------------

  const loaders = {
    cylinder: () => {},
    scrap: loadScrap,
    refused: loadRefused,
    hazards: loadHazards,
    reports: () => loadReports(false),
    stations: loadStations,
    foresight: () => {
      loadForesight();
      loadUnseen(false);
    },
    map: (vehicle) => window.pingmaMap.open(mapShared(), vehicle || null),
  };

  // What the map (map.js) is given of the console.
  function mapShared() {
    return {
      api: api, explain: explain, failInto: failInto, when: when, badge: badge,
      table: table, emptyNote: emptyNote, role: role(),
    };
  }

  function allowed(name) {
    return role() !== "company" || REGULATOR_TABS.indexOf(name) < 0;
  }

  function showTab(name, focus) {
    if (!(name in loaders) || !allowed(name)) name = "cylinder";
    if (name !== "map") window.pingmaMap.close();
    for (const b of document.querySelectorAll("[role=tab]")) {
      b.hidden = !allowed(b.dataset.tab);
      const on = b.dataset.tab === name;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    }
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "panel-" + name;
    hideError();
  }

  // #cylinder/CODE, #stations/ID, #scrap, ...
  function route() {
    if (!token()) return;
    const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
    const [name, ...rest] = hash.split("/");
    const arg = rest.join("/");
    const tab = name in loaders && allowed(name) ? name : "cylinder";
    showTab(tab, false);
    if (tab === "map") {
      loaders.map(arg);
    } else if (tab === "cylinder" && arg) {
      $("find-scan").value = arg;
      findCylinder(arg);
    } else if (tab === "stations" && arg) {
      loadStations().then(() => openStation(arg));
    } else {
      loaders[tab]();
    }
  }

  function start() {
    $("signin").hidden = true;
    $("tabs").hidden = false;
    $("sign-out").hidden = false;
    loadAudit();
    route();
  }

  // ---- cylinder ------------------------------------------------------------------

  let historyCode = null;
  let historyCursor = null;

  async function findCylinder(scan) {
    scan = String(scan || "").trim();
    const status = $("find-status");
    hideError();
    if (!scan) {
      status.textContent = "请输入气瓶码或扫码内容。 Enter a code or scan text.";
      return;
    }
    status.textContent = "查询中… Looking up…";
    $("cylinder-record").hidden = true;
    $("cylinder-history").hidden = true;
    let code = null;
    let registered = true;
    try {
      code = (await api("GET", "/v1/resolve?scan=" + encodeURIComponent(scan))).code;
    } catch (e) {
      if (e.status !== 404) {
        status.textContent = "";
        failInto($("cylinder-record"), e);
        $("cylinder-record").hidden = false;
        return;
      }
      // Not registered: a black cylinder may still have a history (refused fill
      // checks, reports from the public) under the code as scanned.
      registered = false;
      code = /^[A-Za-z0-9._-]{1,64}$/.test(scan) ? scan.toUpperCase() : null;
      if (!code) {
        const m = /\/c\/([A-Za-z0-9._-]{1,64})\/?(?:[?#].*)?$/.exec(scan);
        code = m ? m[1].toUpperCase() : null;
      }
    }
    const record = $("cylinder-record");
    clear(record);
    record.hidden = false;
    if (registered) {
      try {
        const c = await api("GET", "/v1/cylinders/" + encodeURIComponent(code));
        renderRecord(c);
      } catch (e) {
        failInto(record, e);
      }
    } else {
      record.appendChild(el("div", { class: "record-head" },
        el("span", { class: "code mono", text: code || scan }),
        badge("未登记（黑气瓶？）", "Not registered", "bad")));
      record.appendChild(el("p", {}, "此码未在登记系统中找到。", en("This code resolves to no registered cylinder.")));
    }
    status.textContent = "";
    if (code) {
      historyCode = code;
      historyCursor = null;
      clear($("timeline"));
      await loadHistory(!registered);
    }
  }

  function renderRecord(c) {
    const record = $("cylinder-record");
    clear(record);
    const st = STATES[c.state] || [c.state, c.state, "unknown"];
    record.appendChild(el("div", { class: "record-head" },
      el("span", { class: "code mono", id: "record-code", text: c.code }),
      badge(st[0], st[1], st[2]),
      c.fillable ? badge("可以充装", "Fillable", "ok") : badge("禁止充装", "Not fillable", "bad")));
    if (c.reasons && c.reasons.length) {
      const ul = el("ul", { class: "reasons", id: "record-reasons" });
      for (const r of c.reasons) ul.appendChild(el("li", { "data-code": r.code }, r.message + " ", el("span", { class: "mono sub", text: r.code })));
      record.appendChild(ul);
    }
    const fields = [
      ["产权单位", "Owner", c.owner_company_id],
      ["型号", "Model", c.model],
      ["介质相态", "Phase", c.phase],
      ["制造单位", "Manufacturer", c.manufacturer],
      ["出厂编号", "Serial", c.serial],
      ["制造年月", "Made", c.manufactured],
      ["钢印皮重", "Tare", c.tare_kg !== undefined ? c.tare_kg + " kg" : null],
      ["公称容积", "Water capacity", c.water_capacity_l !== undefined ? c.water_capacity_l + " L" : null],
      ["最大充装量", "Allowed fill", c.allowed_fill_kg !== undefined ? c.allowed_fill_kg + " kg" : null],
      ["设计使用年限", "Design life", c.design_life_years !== undefined ? c.design_life_years + " 年 years" : null],
      ["使用登记证", "Registration", (c.registration_no || "—") + " · " + (c.registration_state || "")],
      ["上次检验", "Last inspection", c.last_inspection ? c.last_inspection + (c.last_inspection_result ? " · " + c.last_inspection_result : "") : null],
      ["下次检验", "Next inspection due", c.next_inspection_due],
      ["使用年限截止", "Service life ends", c.service_life_end],
      ["安全评估", "Assessment", c.assessment ? c.assessment.date + " · " + c.assessment.result + (c.assessment.extends_until ? " → " + c.assessment.extends_until : "") : null],
      ["状态原因", "State reason", c.state_reason ? reasonText(c.state_reason) + (c.state_since ? " · " + when(c.state_since) : "") : null],
      ["最近充装", "Last fill", c.last_fill ? c.last_fill.station_id + " · " + when(c.last_fill.at) : null],
      ["标签/芯片", "Carriers", c.carriers && c.carriers.length ? c.carriers.join(", ") : null],
    ];
    const dl = el("dl", { class: "record" });
    for (const [zh, e, v] of fields) {
      dl.appendChild(el("div", {}, el("dt", {}, zh + " ", el("span", { lang: "en", class: "inline-en", text: e })), el("dd", { text: v === null || v === undefined || v === "" ? "—" : String(v) })));
    }
    record.appendChild(dl);
  }

  // What one event looks like: [icon character, tone, Chinese title, English title, detail lines].
  function describe(ev) {
    const lines = [];
    const reasons = (ev.reasons || []).map((r) => (typeof r === "string" ? r : r.code));
    switch (ev.type) {
      case "registered":
        return ["登", "info", "登记建档", "Registered", [
          [ev.model, ev.manufacturer, ev.serial].filter(Boolean).join(" · "),
          ev.owner_company_id ? "产权单位 owner " + ev.owner_company_id : ""]];
      case "carrier_bound":
        return ["签", "info", "绑定标签/芯片", "Carrier bound", [ev.carrier || ""]];
      case "inspection":
        return ["检", ev.result === "fail" ? "bad" : "good", ev.result === "fail" ? "定期检验不合格" : "定期检验合格",
          ev.result === "fail" ? "Inspection failed" : "Inspection passed",
          [[ev.date, ev.report_no ? "报告 " + ev.report_no : "", ev.next_due ? "下次 next " + ev.next_due : ""].filter(Boolean).join(" · ")]];
      case "assessment":
        return ["评", ev.result === "fail" ? "bad" : "good", "安全评估", "Safety assessment",
          [[ev.date, ev.result, ev.extends_until ? "延至 until " + ev.extends_until : ""].filter(Boolean).join(" · ")]];
      case "fill_check":
        if (ev.offline) return describeOfflineCheck(ev, reasons);
        if (ev.decision === "allow") {
          return ["✓", "good", "充装前检查：允许充装", "Fill check: allowed",
            [["充装站 station " + (ev.station_id || "?"), ev.operator_id ? "充装工 operator " + ev.operator_id : ""].filter(Boolean).join(" · ")]];
        }
        lines.push(["充装站 station " + (ev.station_id || "?"), ev.operator_id ? "充装工 operator " + ev.operator_id : ""].filter(Boolean).join(" · "));
        if (ev.defects && ev.defects.length) lines.push("缺陷 defects: " + ev.defects.join(", "));
        return ["✗", "bad", "充装前检查：拒绝充装", "Fill check: refused", lines, reasons];
      case "fill": {
        const ok = ev.result === "ok";
        return ["充", ok ? "good" : "warn", ok ? "充装" : "充装异常（" + ev.result + "）", "Fill " + (ev.result || ""),
          [[ev.station_id ? "充装站 station " + ev.station_id : "", ev.net_kg !== undefined ? "净重 net " + ev.net_kg + " kg" : "",
            ev.scale_id ? "秤 scale " + ev.scale_id : "", ev.offline ? "离线 offline" : ""].filter(Boolean).join(" · ")]];
      }
      case "handover": {
        const deliver = ev.direction !== "collect";
        const ok = ev.decision === "allow";
        const zh = (deliver ? "送气交付" : "回收空瓶") + (ok ? "" : "：被拒绝");
        lines.push([ev.customer_id ? "用户 customer " + ev.customer_id : "", ev.courier_id ? "送气工 courier " + ev.courier_id : "",
          ev.vehicle ? "车辆 vehicle " + ev.vehicle : ""].filter(Boolean).join(" · "));
        if (ev.safety_check) {
          const failed = Object.keys(ev.safety_check).filter((k) => ev.safety_check[k] === "fail");
          lines.push(failed.length ? "安检不合格项 failed checks: " + failed.join(", ") : "入户安检合格 safety check passed");
        }
        return [deliver ? "送" : "收", ok ? "good" : "bad", zh, (deliver ? "Delivered" : "Collected") + (ok ? "" : ": refused"), lines, reasons];
      }
      case "flagged_for_scrap":
        return ["!", "warn", "标记待报废", "Flagged for scrapping", [reasonText(ev.reason)]];
      case "violation":
        lines.push(ev.fill_event_id ? "充装记录 fill " + ev.fill_event_id : "");
        if (ev.station_check_id) {
          lines.push("离线判定允许充装，注册中心判定拒绝 allowed offline; the registry would have refused");
          lines.push("离线判定 offline check " + ev.station_check_id + (ev.offline_decision && ev.offline_decision.decided_at ? " · " + when(ev.offline_decision.decided_at) : ""));
        }
        if (ev.filled_against_own_block) lines.push("充装站违背自身拒绝结论充装 filled against the station's own block");
        if (ev.result_by_weight) lines.push("按重量应为 by weight: " + ev.result_by_weight);
        return ["违", "bad", "违规充装", "Violation", lines.filter(Boolean), reasons];
      case "scrapped":
        return ["废", "dark", "已报废，登记注销", "Scrapped, registration cancelled",
          [[ev.date, ev.method, ev.certificate_no ? "证书 " + ev.certificate_no : ""].filter(Boolean).join(" · ")]];
      case "public_report": {
        const cat = REPORT_CATEGORIES[ev.category] || [ev.category, ev.category];
        lines.push(cat[0] + " · " + cat[1]);
        if (ev.text) lines.push("“" + ev.text + "”");
        if (ev.contact) lines.push("联系方式 contact: " + ev.contact);
        if (ev.contact_erased) lines.push("联系方式已删除 contact erased");
        return ["举", "public", "群众举报", "Report from the public", lines];
      }
      case "hazard_opened": {
        const h = HAZARDS[ev.code] || [ev.code, ev.code];
        return ["隐", "warn", "登记隐患：" + h[0], "Hazard opened: " + h[1],
          [[ev.id, ev.customer_id ? "用户 customer " + ev.customer_id : "", ev.deadline ? "期限 deadline " + ev.deadline : ""].filter(Boolean).join(" · ")]];
      }
      case "hazard_closed":
        return ["改", "good", "隐患已整改", "Hazard closed", [[ev.id, ev.closed_by, ev.how].filter(Boolean).join(" · ")]];
      case "personal_data_erased":
        return ["删", "info", "个人信息已删除", "Personal data erased",
          [[ev.field === "contact" ? "举报人联系方式 reporter's contact" : ev.field === "location" ? "交接位置 handover place" : ev.field, ev.personal_data].filter(Boolean).join(" · ")]];
      default:
        return ["·", "info", ev.type, ev.type, []];
    }
  }

  // A check the station decided on its replica while the registry was unreachable
  // (离线判定): the station's decision is what happened at the scale; the registry's,
  // made when it arrived, is shown beside it, and a disagreement as one.
  function describeOfflineCheck(ev, reasons) {
    const allowed = ev.decision === "allow";
    const disagrees = ev.agrees === false;
    const lines = [["充装站 station " + (ev.station_id || "?"), ev.operator_id ? "充装工 operator " + ev.operator_id : ""].filter(Boolean).join(" · ")];
    lines.push("离线判定于 decided offline at " + when(ev.decided_at) +
      " · 副本同步于 replica synced " + (ev.replica_synced_at ? when(ev.replica_synced_at) : "从未 never"));
    if (ev.defects && ev.defects.length) lines.push("缺陷 defects: " + ev.defects.join(", "));
    const registryReasons = (ev.registry_reasons || []).map(reasonText).join("; ");
    lines.push("注册中心判定 registry: " + (ev.registry_decision === "allow" ? "允许 allow" : "拒绝 block") +
      (registryReasons ? " · " + registryReasons : ""));
    if (disagrees) lines.push("离线判定与注册中心不一致 / offline decision disagrees with the registry");
    const tone = disagrees ? (allowed ? "bad" : "warn") : (allowed ? "good" : "bad");
    return [allowed ? "✓" : "✗", tone,
      "离线判定：" + (allowed ? "允许充装" : "拒绝充装") + (disagrees ? "（与注册中心不一致）" : ""),
      "Decided offline: " + (allowed ? "allowed" : "refused") + (disagrees ? " (disagrees with the registry)" : ""),
      lines, reasons];
  }

  function timelineItem(ev) {
    const [icon, tone, zh, enText, lines, reasons] = describe(ev);
    const actor = ev.actor ? (ROLES[ev.actor.role] || ev.actor.role) + " " + ev.actor.id : "";
    const li = el("li", { class: "tone-" + tone, "data-type": ev.type, "data-decision": ev.decision || null,
      "data-offline": ev.offline ? "true" : null, "data-agrees": ev.offline ? String(ev.agrees !== false) : null },
      el("span", { class: "icon", "aria-hidden": "true", text: icon }),
      el("div", { class: "title" }, zh + " ", el("span", { lang: "en", class: "inline-en", text: enText })),
      el("div", { class: "when", text: when(ev.at) + (actor ? " · " + actor : "") }));
    const detail = el("div", { class: "detail" });
    for (const line of lines || []) if (line) detail.appendChild(el("div", { text: line }));
    if (reasons && reasons.length) {
      const ul = el("ul");
      for (const r of reasons) ul.appendChild(el("li", { "data-code": r, text: reasonText(r) }));
      detail.appendChild(ul);
    }
    li.appendChild(detail);
    return li;
  }

  async function loadHistory(quiet) {
    const box = $("cylinder-history");
    const more = $("history-more");
    more.disabled = true;
    try {
      const page = await api("GET", "/v1/cylinders/" + encodeURIComponent(historyCode) + "/history?limit=50" +
        (historyCursor ? "&cursor=" + encodeURIComponent(historyCursor) : ""));
      for (const ev of page.events || []) $("timeline").appendChild(timelineItem(ev));
      historyCursor = page.next_cursor || null;
      more.hidden = !historyCursor;
      box.hidden = false;
    } catch (e) {
      if (!(quiet && e.status === 404)) {
        box.hidden = false;
        failInto($("timeline"), e);
      }
    } finally {
      more.disabled = false;
    }
  }

  async function readPhoto(input, then) {
    const file = input.files && input.files[0];
    if (!file) return;
    const status = $("find-status");
    status.textContent = "正在识别照片… Reading the photo…";
    let type = file.type;
    if (!type) type = /\.png$/i.test(file.name) ? "image/png" : "image/jpeg";
    try {
      const r = await api("POST", "/v1/scan/image", { raw: file, contentType: type });
      status.textContent = "已识别 Read: " + r.scan;
      then(r.code || r.scan);
    } catch (e) {
      status.textContent = "";
      failInto($("cylinder-record"), e);
      $("cylinder-record").hidden = false;
    } finally {
      input.value = "";
    }
  }

  // ---- scrap queue -----------------------------------------------------------------

  let scrapCursor = null;
  let scrapRows = [];

  async function loadScrap(more) {
    const box = $("scrap-list");
    if (more !== true) {
      scrapCursor = null;
      scrapRows = [];
      clear(box);
      box.appendChild(emptyNote("加载中…", "Loading…"));
    }
    try {
      const data = await api("GET", "/v1/scrap-queue?limit=100" + (more === true && scrapCursor ? "&cursor=" + encodeURIComponent(scrapCursor) : ""));
      scrapRows = scrapRows.concat(data.cylinders || []);
      scrapCursor = data.next_cursor || null;
      const list = scrapRows;
      clear(box);
      $("scrap-more").hidden = !scrapCursor;
      if (!list.length) {
        box.appendChild(emptyNote("没有待报废气瓶。", "Nothing is waiting to be scrapped."));
        return;
      }
      const shown = scrapCursor ? "已显示 " + list.length + " 只（按标记先后）· " + list.length + " shown, oldest first"
        : "共 " + list.length + " 只 · " + list.length + " cylinders";
      box.appendChild(el("p", { class: "totals", text: shown }));
      box.appendChild(table([["气瓶码", "Code"], ["产权单位", "Owner"], ["原因", "Reason"], ["标记时间", "Since"]],
        list.map((c) => [codeLink(c.code), c.owner_company_id, reasonText(c.reason), when(c.since)]),
        (i) => ({ "data-code": list[i].code })));
    } catch (e) {
      failInto(box, e);
    }
  }

  // ---- refused fills -------------------------------------------------------------

  function isoDay(d) {
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  function range() {
    if (!$("refused-to").value) $("refused-to").value = isoDay(new Date());
    if (!$("refused-from").value) $("refused-from").value = isoDay(new Date(Date.now() - 29 * 86400000));
    return "from=" + encodeURIComponent($("refused-from").value) + "&to=" + encodeURIComponent($("refused-to").value);
  }

  // A horizontal bar chart: rows [{label, value, checks?}]; the bars of `value`
  // are class "bar" (refused), those of checks "bar checks" behind them.
  function barChart(rows, title) {
    const rowH = 26;
    const labelW = 170;
    const width = 560;
    const height = Math.max(1, rows.length) * rowH + 24;
    const max = Math.max(1, ...rows.map((r) => Math.max(r.value, r.checks || 0)));
    const s = svg("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img", "aria-label": title });
    s.appendChild(svg("title", {}, title));
    const plotW = width - labelW - 60;
    rows.forEach((r, i) => {
      const y = i * rowH + 4;
      s.appendChild(svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end" }, r.label.length > 26 ? r.label.slice(0, 25) + "…" : r.label));
      if (r.checks !== undefined) {
        s.appendChild(svg("rect", { class: "bar checks", x: labelW, y: y, width: Math.max(1, (r.checks / max) * plotW), height: rowH - 8 }));
      }
      const rect = svg("rect", { class: "bar", "data-key": r.key, x: labelW, y: y, width: Math.max(r.value ? 2 : 0, (r.value / max) * plotW), height: rowH - 8 });
      rect.appendChild(svg("title", {}, r.label + ": " + r.value + (r.checks !== undefined ? " / " + r.checks : "")));
      s.appendChild(rect);
      s.appendChild(svg("text", { x: labelW + (Math.max(r.value, r.checks || 0) / max) * plotW + 6, y: y + 15 },
        r.checks !== undefined ? r.value + " / " + r.checks : String(r.value)));
    });
    s.appendChild(svg("line", { class: "axis", x1: labelW, x2: labelW, y1: 0, y2: height - 20 }));
    return s;
  }

  // Vertical bars per day (or month): rows [{label, value}].
  function columnChart(rows, title, cls) {
    const width = Math.min(1100, Math.max(360, rows.length * 44 + 50));
    const height = 220;
    const left = 36;
    const bottom = 40;
    const max = Math.max(1, ...rows.map((r) => r.value));
    const s = svg("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img", "aria-label": title });
    s.appendChild(svg("title", {}, title));
    const step = (width - left - 10) / Math.max(1, rows.length);
    const every = Math.ceil(rows.length / 12);
    rows.forEach((r, i) => {
      const h = (r.value / max) * (height - bottom - 20);
      const x = left + i * step + step * 0.15;
      const rect = svg("rect", { class: "bar " + (cls || ""), "data-key": r.key, x: x, y: height - bottom - h, width: Math.max(1, step * 0.7), height: h });
      rect.appendChild(svg("title", {}, r.label + ": " + r.value));
      s.appendChild(rect);
      if (r.value) s.appendChild(svg("text", { x: x + step * 0.35, y: height - bottom - h - 4, "text-anchor": "middle" }, String(r.value)));
      if (i % every === 0) s.appendChild(svg("text", { x: x + step * 0.35, y: height - bottom + 16, "text-anchor": "middle" }, r.label));
    });
    s.appendChild(svg("line", { class: "axis", x1: left, x2: width - 5, y1: height - bottom, y2: height - bottom }));
    s.appendChild(svg("text", { x: 4, y: 14 }, String(max)));
    return s;
  }

  function chartInto(id, node, legend) {
    const box = $(id);
    clear(box);
    box.appendChild(node);
    if (legend) box.appendChild(legend);
  }

  function refusedLegend() {
    return el("p", { class: "legend" }, el("i", { class: "refused" }), "拒绝 refused", el("i", { class: "checks" }), "检查总数 checks");
  }

  async function loadRefused() {
    const q = range();
    $("refused-total").textContent = "加载中… Loading…";
    const get = (group) => api("GET", "/v1/stats/fill-checks?" + q + "&group_by=" + group);
    const [byStation, byReason, byDay] = await Promise.allSettled([get("station"), get("reason"), get("day")]);
    if (byStation.status === "fulfilled") {
      const t = byStation.value.total || {};
      $("refused-total").textContent = "检查 " + (t.checks || 0) + " 次，拒绝 " + (t.refused || 0) + " 次 · " +
        (t.checks || 0) + " checks, " + (t.refused || 0) + " refused";
      const groups = byStation.value.groups || [];
      chartInto("chart-station", groups.length
        ? barChart(groups.map((g) => ({ key: g.key, label: (g.name ? g.name + " " : "") + g.key, value: g.refused || 0, checks: g.checks || 0 })), "按充装站拒绝充装 Refused fills by station")
        : emptyNote("无数据。", "No checks in this period."), groups.length ? refusedLegend() : null);
    } else {
      $("refused-total").textContent = "";
      failInto($("chart-station"), byStation.reason);
    }
    if (byReason.status === "fulfilled") {
      const groups = byReason.value.groups || [];
      chartInto("chart-reason", groups.length
        ? barChart(groups.map((g) => ({ key: g.key, label: (REASONS[g.key] ? REASONS[g.key][0] : g.key), value: g.refused || 0 })), "按原因拒绝充装 Refused fills by reason")
        : emptyNote("无拒绝记录。", "No refusals in this period."));
    } else {
      failInto($("chart-reason"), byReason.reason);
    }
    if (byDay.status === "fulfilled") {
      const groups = byDay.value.groups || [];
      chartInto("chart-day", groups.length
        ? columnChart(groups.map((g) => ({ key: g.key, label: String(g.key).slice(5), value: g.refused || 0 })), "每日拒绝充装 Refused fills per day")
        : emptyNote("无数据。", "No checks in this period."));
    } else {
      failInto($("chart-day"), byDay.reason);
    }
  }

  // Links cannot carry the token: the file is fetched and saved through a blob URL.
  async function download(kind, button) {
    button.disabled = true;
    try {
      const response = await request("GET", "/v1/export/" + kind + ".csv?" + range());
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: kind + "-" + $("refused-from").value + "-" + $("refused-to").value + ".csv" });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      const [zh, enText] = explain(e);
      showError("导出失败：" + zh, "Export failed: " + enText);
    } finally {
      button.disabled = false;
    }
  }

  // ---- hazards -------------------------------------------------------------------

  let hazardsCursor = null;
  let hazardsRows = [];

  async function loadHazards(more) {
    const box = $("hazards-list");
    if (more !== true) {
      hazardsCursor = null;
      hazardsRows = [];
      clear(box);
      $("hazards-summary").textContent = "";
    }
    const state = $("hazards-state").value;
    try {
      // The registry's order: open ones by deadline (the overdue first), then closed.
      const data = await api("GET", "/v1/hazards?limit=200" + (state ? "&state=" + state : "") +
        (more === true && hazardsCursor ? "&cursor=" + encodeURIComponent(hazardsCursor) : ""));
      hazardsRows = hazardsRows.concat(data.hazards || []);
      hazardsCursor = data.next_cursor || null;
      $("hazards-more").hidden = !hazardsCursor;
      clear(box);
      const list = hazardsRows;
      const overdue = list.filter((h) => h.overdue === true).length;
      $("hazards-summary").textContent = (hazardsCursor ? "已显示 " : "共 ") + list.length + " 项，逾期未整改 " + overdue + " 项 · " + list.length + (hazardsCursor ? " shown" : " hazards") + ", " + overdue + " overdue";
      if (!list.length) {
        box.appendChild(emptyNote("没有隐患记录。", "No hazards."));
        return;
      }
      box.appendChild(table([["状态", "State"], ["隐患", "Hazard"], ["编号", "Id"], ["气瓶", "Cylinder"], ["用户", "Customer"],
        ["单位", "Company"], ["责任方", "Responsible"], ["登记", "Opened"], ["整改期限", "Deadline"]],
      list.map((h) => {
        const name = HAZARDS[h.code] || [h.code, h.code];
        return [
          h.overdue === true ? badge("逾期", "Overdue", "bad") : h.state === "open" ? badge("未整改", "Open", "unknown") : badge("已整改", "Closed", "ok"),
          el("span", {}, name[0], en(h.code)),
          el("span", { class: "mono", text: h.id }),
          h.cylinder ? codeLink(h.cylinder) : "—",
          h.customer_id, h.company_id,
          h.responsible === "company" ? "企业 company" : "用户 customer",
          when(h.opened_at) + (h.opened_by ? " · " + h.opened_by : ""),
          h.deadline + (h.state === "closed" && h.closed_by ? " · 整改人 " + h.closed_by : ""),
        ];
      }), (i) => ({ class: list[i].overdue === true ? "overdue" : "", "data-id": list[i].id })));
    } catch (e) {
      failInto(box, e);
    }
  }

  // ---- public reports ------------------------------------------------------------

  let reportsCursor = null;
  let reportsRows = [];

  async function loadReports(more) {
    const box = $("reports-list");
    if (!more) {
      reportsCursor = null;
      reportsRows = [];
    }
    try {
      const data = await api("GET", "/v1/reports?limit=50" + (more && reportsCursor ? "&cursor=" + encodeURIComponent(reportsCursor) : ""));
      reportsRows = reportsRows.concat(data.reports || []);
      reportsCursor = data.next_cursor || null;
      clear(box);
      $("reports-more").hidden = !reportsCursor;
      if (!reportsRows.length) {
        box.appendChild(emptyNote("暂无举报。", "No reports."));
        return;
      }
      box.appendChild(table([["时间", "When"], ["气瓶码", "Code"], ["问题", "Problem"], ["说明", "Details"], ["联系方式", "Contact"], ["受理编号", "Reference"]],
        reportsRows.map((r) => {
          const cat = REPORT_CATEGORIES[r.category] || [r.category || "—", ""];
          return [when(r.at),
            el("span", {}, r.code ? codeLink(r.code) : "—", r.registered === false ? el("span", {}, " ", badge("未登记", "Unregistered", "bad")) : null),
            el("span", {}, cat[0], cat[1] ? en(cat[1]) : null),
            r.text || "—", r.contact || (r.contact_erased ? "已删除 erased" : "—"),
            el("span", { class: "mono", text: r.id })];
        }), (i) => ({ "data-id": reportsRows[i].id })));
    } catch (e) {
      failInto(box, e);
    }
  }

  // ---- stations ------------------------------------------------------------------

  async function loadStations() {
    const box = $("stations-list");
    clear(box);
    try {
      const data = await api("GET", "/v1/stations");
      const list = data.stations || [];
      if (!list.length) {
        box.appendChild(emptyNote("没有充装站。", "No stations."));
        return;
      }
      box.appendChild(table([["编号", "Id"], ["名称", "Name"], ["单位", "Company"], ["区域", "District"], ["状态", "State"], ["", ""]],
        list.map((s) => [
          el("span", { class: "mono", text: s.id }), s.name, s.company_id, s.district,
          s.locked ? el("span", {}, badge("已锁定", "Locked", "bad"), s.lock_reason ? el("span", { class: "en", text: s.lock_reason }) : null) : badge("正常", "Open", "ok"),
          el("a", { class: "button secondary", href: "#stations/" + encodeURIComponent(s.id), "data-station": s.id }, "查看 ", el("span", { lang: "en", class: "inline-en", text: "View" })),
        ]), (i) => ({ class: list[i].locked ? "locked" : "", "data-id": list[i].id })));
    } catch (e) {
      failInto(box, e);
    }
  }

  async function openStation(id) {
    const page = $("station-page");
    clear(page);
    page.hidden = false;
    let s;
    try {
      s = await api("GET", "/v1/stations/" + encodeURIComponent(id));
    } catch (e) {
      failInto(page, e);
      return;
    }
    page.setAttribute("data-station", s.id);
    page.setAttribute("data-locked", s.locked ? "true" : "false");
    page.appendChild(el("h2", { id: "station-title" }, s.name + " ", el("span", { class: "mono sub", text: s.id })));
    page.appendChild(el("p", {}, "单位 company " + s.company_id + " · 区域 district " + s.district + " · ",
      s.locked ? badge("已锁定", "Locked", "bad") : badge("正常充装", "Open", "ok")));
    if (s.locked && s.lock_reason) page.appendChild(el("p", { class: "note-box" }, "锁定原因：" + s.lock_reason, en("Locked because: " + s.lock_reason)));

    const stats = el("div", { class: "chart", id: "station-chart" });
    page.appendChild(el("h3", {}, "拒绝充装（近30天，按原因） ", el("span", { lang: "en", class: "inline-en", text: "Refused fills, last 30 days, by reason" })));
    page.appendChild(stats);
    const to = isoDay(new Date());
    const from = isoDay(new Date(Date.now() - 29 * 86400000));
    api("GET", "/v1/stats/fill-checks?from=" + from + "&to=" + to + "&group_by=reason&station_id=" + encodeURIComponent(s.id))
      .then((data) => {
        const groups = data.groups || [];
        const t = data.total || {};
        clear(stats);
        stats.appendChild(el("p", { class: "totals", text: "检查 " + (t.checks || 0) + " 次，拒绝 " + (t.refused || 0) + " 次 · " + (t.checks || 0) + " checks, " + (t.refused || 0) + " refused" }));
        if (groups.length) stats.appendChild(barChart(groups.map((g) => ({ key: g.key, label: REASONS[g.key] ? REASONS[g.key][0] : g.key, value: g.refused || 0 })), "拒绝原因 Refusals by reason"));
      })
      .catch((e) => failInto(stats, e));

    // The remote lock (DB4114/T 185 §4.10): a reason, then a confirmation.
    const lock = !s.locked;
    const form = el("form", { id: "lock-form", novalidate: true });
    form.appendChild(el("h3", {}, lock ? "锁定充装站 " : "解除锁定 ", el("span", { lang: "en", class: "inline-en", text: lock ? "Lock the station" : "Unlock the station" })));
    form.appendChild(el("p", { class: "sub" }, lock ? "锁定后该站所有充装检查均被拒绝（STATION_LICENSE_INVALID）。" : "解除后该站恢复正常充装检查。",
      en(lock ? "While locked, every fill check at the station is refused." : "Fill checks at the station are decided normally again.")));
    form.appendChild(el("label", { class: "field", for: "lock-reason" }, "原因（必填） ", el("span", { lang: "en", class: "inline-en", text: "Reason (required)" })));
    form.appendChild(el("textarea", { id: "lock-reason", maxlength: 1000, required: true }));
    const ask = el("button", { type: "submit", id: "lock-button", class: lock ? "danger" : "ok" }, lock ? "锁定 " : "解除锁定 ", el("span", { lang: "en", class: "inline-en", text: lock ? "Lock" : "Unlock" }));
    form.appendChild(ask);
    const confirmBox = el("div", { class: "confirm", id: "lock-confirm", role: "alertdialog", "aria-labelledby": "lock-confirm-text", hidden: true });
    form.appendChild(confirmBox);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = $("lock-reason").value.trim();
      if (!reason) {
        showError("请填写原因。", "Give a reason.");
        $("lock-reason").focus();
        return;
      }
      hideError();
      clear(confirmBox);
      confirmBox.appendChild(el("p", { id: "lock-confirm-text" },
        el("strong", { text: (lock ? "确认锁定充装站 " : "确认解除锁定 ") + s.name + "（" + s.id + "）？" }),
        en((lock ? "Lock station " : "Unlock station ") + s.id + "? Reason: " + reason)));
      const yes = el("button", { type: "button", id: "lock-confirm-yes", class: lock ? "danger" : "ok" }, "确认 ", el("span", { lang: "en", class: "inline-en", text: "Confirm" }));
      const no = el("button", { type: "button", id: "lock-confirm-no", class: "secondary" }, "取消 ", el("span", { lang: "en", class: "inline-en", text: "Cancel" }));
      no.addEventListener("click", () => {
        confirmBox.hidden = true;
        ask.focus();
      });
      yes.addEventListener("click", async () => {
        yes.disabled = true;
        try {
          await api("POST", "/v1/stations/" + encodeURIComponent(s.id) + (lock ? "/lock" : "/unlock"), { json: { reason: reason } });
          await loadStations();
          await openStation(s.id);
          const done = el("p", { class: "note-box", role: "status", id: "lock-done" }, lock ? "已锁定。" : "已解除锁定。", en(lock ? "Locked." : "Unlocked."));
          $("station-page").insertBefore(done, $("station-page").children[1] || null);
        } catch (e) {
          yes.disabled = false;
          const [zh, enText] = explain(e);
          showError(zh, enText);
        }
      });
      confirmBox.appendChild(el("div", { class: "actions" }, yes, no));
      confirmBox.hidden = false;
      yes.focus();
    });
    page.appendChild(form);
    page.scrollIntoView({ block: "start" });
  }

  // ---- foresight -----------------------------------------------------------------

  async function loadForesight() {
    const chart = $("due-chart");
    const box = $("due-table");
    clear(chart);
    clear(box);
    try {
      const data = await api("GET", "/v1/foresight/inspections-due?months=12");
      const months = data.months || [];
      const companies = data.companies || [];
      const overdue = {};
      for (const o of data.overdue || []) overdue[o.company_id] = o.count;
      const sums = months.map((m, i) => companies.reduce((n, c) => n + ((c.counts || [])[i] || 0), 0));
      chart.appendChild(columnChart(months.map((m, i) => ({ key: m, label: m, value: sums[i] })), "每月到期检验数 Inspections due per month", "due"));
      const companyIds = new Set(companies.map((c) => c.company_id));
      const rows = companies.map((c) => [el("span", {}, c.name || c.company_id, en(c.company_id)),
        overdue[c.company_id] ? badge(String(overdue[c.company_id]), "overdue", "bad") : "0",
        ...months.map((m, i) => String((c.counts || [])[i] || 0)), el("strong", { text: String(c.total || 0) })]);
      for (const o of data.overdue || []) {
        if (!companyIds.has(o.company_id)) rows.push([o.company_id, badge(String(o.count), "overdue", "bad"), ...months.map(() => "0"), "0"]);
      }
      if (!rows.length) {
        box.appendChild(emptyNote("未来12个月没有到期检验。", "Nothing falls due in the next 12 months."));
        return;
      }
      box.appendChild(table([["单位", "Company"], ["已超期", "Overdue"], ...months.map((m) => [m, ""]), ["合计", "Total"]], rows));
    } catch (e) {
      failInto(box, e);
    }
  }

  let unseenCursor = null;
  let unseenRows = [];

  async function loadUnseen(more) {
    const box = $("unseen-list");
    const months = Math.max(1, Math.min(120, parseInt($("unseen-months").value, 10) || 6));
    if (!more) {
      unseenCursor = null;
      unseenRows = [];
    }
    try {
      const data = await api("GET", "/v1/foresight/unseen?months=" + months + (more && unseenCursor ? "&cursor=" + encodeURIComponent(unseenCursor) : ""));
      unseenRows = unseenRows.concat(data.cylinders || []);
      unseenCursor = data.next_cursor || null;
      $("unseen-more").hidden = !unseenCursor;
      $("unseen-summary").textContent = "自 " + (data.since || "?") + " 起未在充装站出现：" + unseenRows.length + (unseenCursor ? "+" : "") +
        " 只 · " + unseenRows.length + (unseenCursor ? "+" : "") + " cylinders not filled since " + (data.since || "?");
      clear(box);
      if (!unseenRows.length) return;
      box.appendChild(table([["气瓶码", "Code"], ["产权单位", "Owner"], ["型号", "Model"], ["最近充装", "Last fill"], ["充装站", "Station"], ["下次检验", "Next inspection"]],
        unseenRows.map((c) => [codeLink(c.code), c.owner_company_id, c.model, c.last_fill_at ? when(c.last_fill_at) : "从未 never", c.last_fill_station || "—", c.next_inspection_due || "—"])));
    } catch (e) {
      failInto(box, e);
    }
  }

  // ---- wiring ----------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(false));
    const all = Array.from(document.querySelectorAll("[role=tab]"));
    all.forEach((b) => {
      b.addEventListener("click", () => {
        if (location.hash === "#" + b.dataset.tab) route();
        else location.hash = b.dataset.tab;
      });
      // Arrow keys move between tabs (WAI-ARIA tabs pattern).
      b.addEventListener("keydown", (e) => {
        const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
        if (!d) return;
        e.preventDefault();
        const tabs = all.filter((t) => !t.hidden);
        const i = tabs.indexOf(b);
        const next = tabs[(i + d + tabs.length) % tabs.length];
        next.focus();
        next.click();
      });
    });
    window.addEventListener("hashchange", route);
    $("find-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const scan = $("find-scan").value.trim();
      const target = "#cylinder/" + encodeURIComponent(scan);
      if (location.hash === target) findCylinder(scan);
      else location.hash = target;
    });
    $("find-photo").addEventListener("change", () => readPhoto($("find-photo"), (scan) => {
      $("find-scan").value = scan;
      location.hash = "#cylinder/" + encodeURIComponent(scan);
    }));
    $("history-more").addEventListener("click", () => loadHistory(false));
    $("refused-form").addEventListener("submit", (e) => {
      e.preventDefault();
      loadRefused();
    });
    for (const b of document.querySelectorAll("[data-export]")) b.addEventListener("click", () => download(b.dataset.export, b));
    $("hazards-form").addEventListener("submit", (e) => {
      e.preventDefault();
      loadHazards();
    });
    $("reports-more").addEventListener("click", () => loadReports(true));
    $("scrap-more").addEventListener("click", () => loadScrap(true));
    $("hazards-more").addEventListener("click", () => loadHazards(true));
    $("unseen-form").addEventListener("submit", (e) => {
      e.preventDefault();
      loadUnseen(false);
    });
    $("unseen-more").addEventListener("click", () => loadUnseen(true));
    if (token()) start();
    else $("token").focus();
  });
})();

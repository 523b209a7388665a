// The courier's page: at the customer's door, read the cylinder's label (a photo
// decoded by the registry, or the code typed), pick the customer, do the door-step
// safety check and record the handover. The registry decides; this page only shows
// its verdict, large. While the courier is signed in, the phone's position is sent
// as the vehicle's (positions.js). Every text from the network goes into the page
// as text.
"use strict";

(function () {
  const TOKEN_KEY = "pingma.courier.token";
  const VEHICLE_KEY = "pingma.courier.vehicle";
  const PENDING_KEY = "pingma.courier.pending";

  // The door-step check items the registry accepts (delivery.cpp kCheckItems),
  // worded as what a pass means.
  const CHECK_ITEMS = [
    ["hose_length", "胶管长度不超过2米", "Hose 2 m or shorter"],
    ["hose_joints", "胶管无接头", "Hose has no joints"],
    ["hose_through_wall", "胶管未穿墙、穿楼板", "Hose not through a wall or floor"],
    ["regulator_standard", "减压阀符合标准", "Regulator to standard"],
    ["regulator_age", "减压阀在使用年限内", "Regulator within its service life"],
    ["gas_alarm", "已安装燃气报警器（餐饮用户必检）", "Gas alarm fitted (required for restaurants)"],
    ["flame_failure_device", "灶具有熄火保护装置", "Stove has a flame-failure device"],
    ["ventilation", "通风良好", "Well ventilated"],
    ["cylinders_apart", "备用瓶与在用瓶分开存放", "Spare and in-use cylinders apart"],
  ];
  const HAZARDS = {
    HOSE_TOO_LONG: "胶管超过2米",
    HOSE_JOINTS: "胶管有接头",
    HOSE_THROUGH_WALL: "胶管穿墙穿楼板",
    REGULATOR_NOT_STANDARD: "减压阀不合标准",
    REGULATOR_EXPIRED: "减压阀超期使用",
    NO_GAS_ALARM: "未装燃气报警器",
    NO_FLAME_FAILURE_DEVICE: "灶具无熄火保护",
    POOR_VENTILATION: "通风不良",
    CYLINDERS_NOT_APART: "备用瓶与在用瓶未分开",
  };

  const $ = (id) => document.getElementById(id);

  const { el, en, clear, ApiError } = window.pingma;

  function showError(zh, enText) {
    const box = $("error");
    clear(box);
    box.appendChild(el("strong", { text: zh }));
    if (enText) box.appendChild(en(enText));
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }
  function hideError() {
    $("error").hidden = true;
  }

  // ---- the API -----------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  // One call; resolves to {status, data} for a 2xx, rejects with an ApiError
  // (status 0 when there was no answer at all).
  async function api(method, path, options) {
    options = options || {};
    const response = await window.pingma.call(method, path, options.token || token(), options);
    return { status: response.status, data: await window.pingma.json(response) };
  }

  // A failure said plainly, Chinese first.
  function explain(e) {
    if (!(e instanceof ApiError)) return ["出错了", String(e)];
    switch (e.status) {
      case 0:
        return ["网络不通，未能连接登记系统。请检查网络后重试。",
          "No connection to the registry (" + e.message + "). Check the network and retry."];
      case 401:
        return ["令牌无效或已失效，请重新登录。", "The token is not valid: sign in again. " + e.message];
      case 403:
        return ["此令牌无权执行该操作（需要送气工令牌）。", "This token may not do that (a courier token is needed). " + e.message];
      case 413:
        return ["照片过大。", "The photo is too large. " + e.message];
      case 503:
        return ["登记系统暂不可用，请稍后重试。", "The registry is unavailable; retry shortly. " + e.message];
      default:
        return ["请求未成功（" + e.status + " " + e.code + "）", e.message];
    }
  }

  function fail(e) {
    const [zh, enText] = explain(e);
    showError(zh, enText);
    if (e instanceof ApiError && e.status === 401) signOut(true);
  }

  // ---- sign-in -----------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    hideError();
    const value = $("token").value.trim();
    if (!value) {
      showError("请输入令牌。", "Enter your token.");
      $("token").focus();
      return;
    }
    try {
      // A courier token reads its own hazards: a cheap check of the token and role.
      await api("GET", "/v1/hazards?state=open", { token: value });
    } catch (e) {
      fail(e);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    showWork();
  }

  function signOut(expired) {
    window.pingmaPositions.stop();
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(PENDING_KEY);
    $("handover").hidden = true;
    $("verdict").hidden = true;
    $("after").hidden = true;
    $("sign-out").hidden = true;
    $("signin").hidden = false;
    if (!expired) hideError();
    $("token").focus();
  }

  function showWork() {
    $("signin").hidden = true;
    $("sign-out").hidden = false;
    $("handover").hidden = false;
    $("vehicle").value = localStorage.getItem(VEHICLE_KEY) || $("vehicle").value;
    window.pingmaPositions.start({
      token: token,
      // The vehicle on the form, else the one the last handover named.
      vehicle: () => $("vehicle").value.trim() || localStorage.getItem(VEHICLE_KEY) || "",
      newEventId: newEventId,
      onUnauthorized: fail,
    });
    $("code").focus();
  }

  // ---- the label photo ---------------------------------------------------------

  let previewUrl = null;

  async function readPhoto() {
    const file = $("photo").files && $("photo").files[0];
    if (!file) return;
    hideError();
    const status = $("photo-status");
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    $("photo-preview").src = previewUrl;
    $("photo-preview").hidden = false;
    status.textContent = "正在识别… Reading the label…";
    let type = file.type;
    if (!type) type = /\.png$/i.test(file.name) ? "image/png" : "image/jpeg";
    try {
      const { data } = await api("POST", "/v1/scan/image", { raw: file, contentType: type });
      if (data.code) {
        $("code").value = data.code;
        status.textContent = "已识别：" + data.code + " · Read: " + data.code;
      } else {
        // A tag's key that no cylinder carries: the registry decides on the scan.
        $("code").value = data.scan;
        status.textContent = "已读取，但未找到对应气瓶：" + data.scan + " · Read, but no cylinder carries it";
      }
    } catch (e) {
      status.textContent = "";
      if (e instanceof ApiError && (e.status === 422 || e.status === 415)) {
        showError("未能从照片中读出气瓶码。", e.message);
      } else {
        fail(e);
      }
    } finally {
      $("photo").value = "";
    }
  }

  // ---- customers ---------------------------------------------------------------

  let customers = [];

  function customerLabel(c) {
    const flags = [];
    if (c.kind === "restaurant") flags.push("餐饮 restaurant");
    if (c.basement) flags.push("地下室 basement");
    if (c.semi_basement) flags.push("半地下 semi-basement");
    if (c.cylinder_room) flags.push("有气瓶间 cylinder room");
    return flags;
  }

  async function searchCustomers() {
    hideError();
    const q = $("customer-q").value.trim();
    const status = $("customer-status");
    const list = $("customer-list");
    status.textContent = "查找中… Searching…";
    try {
      const { data } = await api("GET", "/v1/customers?q=" + encodeURIComponent(q) + "&limit=20");
      customers = (data && data.customers) || [];
    } catch (e) {
      customers = [];
      list.hidden = true;
      const [zh, enText] = explain(e);
      status.textContent = zh + " 可直接输入用户编号。 " + enText + " You may type the customer id.";
      if (e.status === 401) fail(e);
      return;
    }
    for (const old of list.querySelectorAll("label.choice")) old.remove();
    if (customers.length === 0) {
      status.textContent = "未找到用户。 No customer found.";
      list.hidden = true;
      return;
    }
    status.textContent = "找到 " + customers.length + " 位用户，请选择。 " + customers.length + " found: choose one.";
    customers.forEach((c, i) => {
      const radio = el("input", { type: "radio", name: "customer", value: c.id, id: "cust-" + i });
      radio.addEventListener("change", () => chooseCustomer(c));
      const flags = customerLabel(c);
      const label = el("label", { class: "choice" + (c.basement || c.semi_basement ? " warn" : ""), for: "cust-" + i },
        radio,
        el("span", {},
          el("strong", { text: c.name || c.id }), " ",
          el("span", { class: "mono sub", text: c.id }),
          el("span", { class: "en", text: [c.address, c.district, c.phone_masked].filter(Boolean).join(" · ") }),
          flags.length ? el("span", { class: "en", text: flags.join(" · ") }) : null));
      list.appendChild(label);
    });
    list.hidden = false;
  }

  function chooseCustomer(c) {
    $("customer-id").value = c.id;
    const facts = $("customer-facts");
    clear(facts);
    const flags = customerLabel(c);
    facts.appendChild(el("p", { text: "已选：" + (c.name || c.id) + "（" + c.id + "）" + (flags.length ? " · " + flags.join(" · ") : "") }));
  }

  // ---- the safety check --------------------------------------------------------

  function buildCheckItems() {
    const box = $("check-items");
    for (const [key, zh, enText] of CHECK_ITEMS) {
      const fs = el("fieldset", { class: "check-item segmented", id: "item-" + key },
        el("legend", {}, zh, en(enText)),
        el("input", { type: "radio", name: "check-" + key, value: "pass", id: "check-" + key + "-pass" }),
        el("label", { for: "check-" + key + "-pass" }, "合格", en("Pass")),
        el("input", { type: "radio", name: "check-" + key, value: "fail", id: "check-" + key + "-fail" }),
        el("label", { for: "check-" + key + "-fail" }, "不合格", en("Fail")));
      box.appendChild(fs);
    }
  }

  function checkAnswers() {
    const out = {};
    for (const [key] of CHECK_ITEMS) {
      const chosen = document.querySelector("input[name='check-" + key + "']:checked");
      if (chosen) out[key] = chosen.value;
    }
    return out;
  }

  // ---- the handover ------------------------------------------------------------

  function direction() {
    return document.querySelector("input[name=direction]:checked").value;
  }

  // The request as the form says it, without event_id; null (with the error shown)
  // when something is missing.
  function formBody() {
    const code = $("code").value.trim();
    const customer = $("customer-id").value.trim();
    const vehicle = $("vehicle").value.trim();
    const dir = direction();
    const missing = [];
    if (!code) missing.push(["气瓶码", "the cylinder code", "code"]);
    if (!customer) missing.push(["用户", "the customer", "customer-id"]);
    if (!vehicle) missing.push(["车辆", "the vehicle", "vehicle"]);
    const answers = checkAnswers();
    const unanswered = CHECK_ITEMS.filter(([key]) => !(key in answers));
    if (dir === "deliver" && unanswered.length) {
      missing.push(["安检项目（" + unanswered.map((i) => i[1]).join("、") + "）",
        "the safety check items (" + unanswered.map((i) => i[2]).join(", ") + ")", "item-" + unanswered[0][0]]);
    }
    if (missing.length) {
      showError("请填写：" + missing.map((m) => m[0]).join("，"),
        "Please fill in " + missing.map((m) => m[1]).join(", ") + ".");
      const first = $(missing[0][2]);
      if (first) (first.querySelector("input") || first).focus();
      return null;
    }
    const body = { customer_id: customer, vehicle: vehicle, direction: dir };
    // A code as read or typed; anything else (a tag's key, a URL) as the scan.
    if (/^[A-Za-z0-9._-]{1,64}$/.test(code)) body.code = code.toUpperCase();
    else body.scan = code;
    if (dir === "deliver" || Object.keys(answers).length) body.safety_check = answers;
    return body;
  }

  // The event_id of an unanswered attempt is kept, with its body, so that a retry
  // (the same body again) carries the same id and is never stored twice.
  function pending() {
    try {
      return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    } catch (e) {
      return null;
    }
  }

  function newEventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  async function submit(event) {
    if (event) event.preventDefault();
    hideError();
    const body = formBody();
    if (!body) return;
    const text = JSON.stringify(body);
    let attempt = pending();
    if (!attempt || attempt.body !== text) attempt = { id: newEventId(), body: text };
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(attempt));
    localStorage.setItem(VEHICLE_KEY, body.vehicle);
    await send(attempt);
  }

  async function send(attempt) {
    const button = $("submit");
    button.disabled = true;
    $("retry").disabled = true;
    $("submit-status").textContent = "提交中… Sending…";
    try {
      const request = Object.assign({ event_id: attempt.id }, JSON.parse(attempt.body));
      const { data } = await api("POST", "/v1/handovers", { json: request });
      sessionStorage.removeItem(PENDING_KEY);
      $("submit-status").textContent = "";
      showVerdict(data);
    } catch (e) {
      $("submit-status").textContent = "";
      // No answer, or the registry could not finish: the same id goes again on retry.
      const retriable = e instanceof ApiError && (e.status === 0 || e.status >= 500);
      if (!retriable) sessionStorage.removeItem(PENDING_KEY);
      fail(e);
      if (retriable) {
        $("after").hidden = false;
        $("retry").hidden = false;
      }
    } finally {
      button.disabled = false;
      $("retry").disabled = false;
    }
  }

  function showVerdict(answer) {
    const box = $("verdict");
    clear(box);
    const allowed = answer.decision === "allow";
    const collect = answer.direction === "collect";
    box.className = "card verdict " + (allowed ? "ok" : "bad");
    box.setAttribute("data-decision", allowed ? "allow" : "block");
    const zh = allowed ? (collect ? "可以回收" : "可以交付") : (collect ? "禁止回收" : "禁止交付");
    const enText = allowed ? (collect ? "Collection allowed" : "Handover allowed")
      : (collect ? "Do not collect" : "Do not hand over");
    box.appendChild(el("p", { class: "big", id: "verdict-title" },
      el("span", { class: "mark", "aria-hidden": "true", text: allowed ? "✓" : "✗" }),
      zh, el("span", { class: "en", lang: "en", text: enText })));
    box.appendChild(el("p", { class: "code mono", text: answer.code || "" }));
    if (answer.duplicate) {
      box.appendChild(el("p", { class: "sub" }, "此交接已记录，这是原来的结果。",
        en("Already recorded: this is the first answer, nothing was stored twice.")));
    }
    const reasons = answer.reasons || [];
    if (reasons.length) {
      box.appendChild(el("h3", {}, "原因 ", el("span", { lang: "en", class: "inline-en", text: "Reasons" })));
      const ul = el("ul", { class: "reasons" });
      for (const r of reasons) {
        const msg = String(r.message || r.code);
        const cut = msg.indexOf(" / ");
        ul.appendChild(el("li", { "data-code": r.code },
          el("strong", { text: cut > 0 ? msg.slice(0, cut) : r.code }),
          el("span", { class: "en", lang: "en", text: cut > 0 ? msg.slice(cut + 3) : msg }),
          el("span", { class: "en mono", text: r.code })));
      }
      box.appendChild(ul);
    }
    const hazards = answer.hazards_opened || [];
    if (hazards.length) {
      box.appendChild(el("h3", {}, "已登记隐患 " + hazards.length + " 项 ",
        el("span", { lang: "en", class: "inline-en", text: "Hazards opened" })));
      const ul = el("ul", { class: "hazards" });
      for (const h of hazards) {
        ul.appendChild(el("li", { "data-code": h.code },
          el("strong", { text: HAZARDS[h.code] || h.code }), " ",
          el("span", { class: "mono", text: h.id }),
          el("span", { class: "en", text: h.code + " · 整改期限 deadline " + h.deadline + " · 责任方 " +
            (h.responsible === "company" ? "企业 company" : "用户 customer") })));
      }
      box.appendChild(ul);
    }
    box.hidden = false;
    $("after").hidden = false;
    $("retry").hidden = true;
    $("handover").hidden = true;
    box.focus();
    box.scrollIntoView({ block: "start" });
  }

  function next() {
    sessionStorage.removeItem(PENDING_KEY);
    hideError();
    $("verdict").hidden = true;
    $("after").hidden = true;
    $("code").value = "";
    $("photo-status").textContent = "";
    $("photo-preview").hidden = true;
    $("customer-id").value = "";
    clear($("customer-facts"));
    for (const r of document.querySelectorAll("#check-items input, #customer-list input")) r.checked = false;
    $("dir-deliver").checked = true;
    $("handover").hidden = false;
    $("code").focus();
  }

  // ---- wiring ------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    buildCheckItems();
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(false));
    $("photo").addEventListener("change", readPhoto);
    $("customer-search").addEventListener("click", searchCustomers);
    $("customer-q").addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        searchCustomers();
      }
    });
    $("all-pass").addEventListener("click", () => {
      for (const [key] of CHECK_ITEMS) $("check-" + key + "-pass").checked = true;
    });
    $("handover").addEventListener("submit", submit);
    // A complaint about a missing field goes once the courier fills something in.
    $("handover").addEventListener("change", hideError);
    $("retry").addEventListener("click", () => {
      const attempt = pending();
      if (attempt) send(attempt);
    });
    $("next").addEventListener("click", next);
    $("vehicle").addEventListener("change", () => window.pingmaPositions.vehicleChanged());
    if (token()) showWork();
    else $("token").focus();
  });
})();

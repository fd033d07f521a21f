// The dev phone: polls the carrier for calls and lets a person answer, press keys and hang up.
"use strict";

const LIVE = new Set(["queued", "ringing", "in-progress"]);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value); else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);  // strings become text nodes: nothing is parsed as HTML
  return node;
}

async function send(path, body) {
  const response = await fetch(path, {method: body === undefined ? "POST" : "PUT",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {})});
  const data = await response.json();
  document.getElementById("notice").textContent = response.ok ? "" : data.error.message;
  return data;
}

function describe(event) {
  switch (event.kind) {
    case "heard": return `heard (${event.verb}): ${event.text || event.url}`;
    case "pressed": return `pressed ${event.digits}`;
    case "said": return `said "${event.speech}"`;
    case "status": return `status ${event.status}`;
    case "error": return `error${event.code ? ` ${event.code}` : ""}: ${event.message}`;
    case "dial": return `dialling ${event.to.join(", ")}`;
    case "bridged": return `connected to ${event.to}`;
    default: return event.kind + (event.by ? ` by ${event.by}` : "");
  }
}

function keypad(sid) {
  const pad = el("div", {class: "keypad", role: "group", "aria-label": "keypad"});
  for (const key of "123456789*0#") {
    pad.append(el("button", {type: "button", class: "secondary", onclick: () => press(sid, key)}, key));
  }
  return pad;
}

function press(sid, key) {
  return fetch(`/_carrier/calls/${sid}/keys`, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({digits: key})});
}

function renderLeg(call, isLeg) {
  const box = el("div", {class: isLeg ? "leg" : "call"},
    el("h3", {}, `${call.direction} ${call.from} → ${call.to} `, el("span", {class: "status"}, call.status)));
  if (LIVE.has(call.status)) {
    const controls = el("div", {});
    if (call.status === "ringing") {
      controls.append(el("button", {type: "button", onclick: () => send(`/_carrier/calls/${call.sid}/answer`)},
        "Answer"));
    }
    controls.append(el("button", {type: "button", class: "secondary",
      onclick: () => send(`/_carrier/calls/${call.sid}/hangup`)}, "Hang up"));
    if (call.status === "in-progress") controls.append(keypad(call.sid));
    box.append(controls);
  }
  const list = el("ol", {class: "timeline"});
  for (const event of call.events) {
    list.append(el("li", {class: event.kind}, `${event.at.toFixed(1)}s ${describe(event)}`));
  }
  box.append(list);
  for (const leg of call.legs) box.append(renderLeg(leg, true));
  return box;
}

async function refresh() {
  try {
    const data = await (await fetch("/_carrier/calls")).json();
    const target = document.getElementById("calls");
    target.replaceChildren(...(data.calls.length ? data.calls.map((c) => renderLeg(c, false))
      : [el("p", {}, "No calls yet.")]));
  } finally {
    setTimeout(refresh, 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("script-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    send(`/_carrier/phones/${form.get("phone")}`, {answer: form.get("answer"), ring_seconds: 2});
  });
  document.getElementById("dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    fetch("/_carrier/inbound", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({from: form.get("from"), to: form.get("to")})});
  });
  refresh();
});

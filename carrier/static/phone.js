// The dev phone: your own phone (dial, answer, keys and words, live), other phones' scripts, and every call's timeline.
"use strict";

const LIVE = new Set(["queued", "ringing", "in-progress"]);
const ANSWERS = {manual: "rings until answered here", human: "answers", machine: "goes to voicemail", busy: "is busy",
  "no-answer": "does not answer", failed: "fails", unassigned: "is not in service"};
const DIRECTIONS = {inbound: "Call in", "outbound-api": "Call out", "outbound-dial": "Dialled"};
let lastCalls = "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick" || key === "onsubmit") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);  // strings become text nodes: nothing is parsed as HTML
  return node;
}

function notice(text) {
  document.getElementById("notice").textContent = text;
}

async function send(path, body, method) {
  const response = await fetch(path, {method: method || "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body || {})});
  const data = await response.json();
  notice(response.ok ? "" : data.error.message);
  return response.ok ? data : null;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false});
}

function named(address, label) {
  return label ? `${label} (${address})` : address;
}

function describe(event) {
  switch (event.kind) {
    case "heard": return `heard (${event.verb}): ${event.text || event.url}`;
    case "pressed": return `pressed ${event.digits}`;
    case "said": return `said "${event.speech}"`;
    case "barged_in": return `the ${event.verb} was cut short after ${event.after} s by what was entered`;
    case "gather_timeout": return "entered nothing before the prompt timed out";
    case "status": return `status: ${event.status.replace("-", " ")}`;
    case "error": return `${event.level || "error"}${event.code ? ` ${event.code}` : ""}: ${event.message}`;
    case "skipped": return `skipped <${event.verb}>: ${event.why}`;
    case "enqueued": return `waiting in the queue ${event.queue}`;
    case "conference_joined": return `joined the conference ${event.conference}`;
    case "dial": return `dialling ${event.to.join(", ")}`;
    case "bridged": return `connected to ${event.to}`;
    default: return event.kind.replaceAll("_", " ") + (event.by ? ` by ${event.by}` : "");
  }
}

function keypad(sid) {
  const pad = el("div", {class: "keypad", role: "group", "aria-label": "keypad"});
  for (const key of "123456789*0#") {
    pad.append(el("button", {type: "button", class: "secondary",
      onclick: () => send(`/_carrier/calls/${sid}/keys`, {digits: key})}, key));
  }
  return pad;
}

function speechForm(sid) {
  const input = el("input", {name: "text", id: `say-${sid}`, placeholder: "yes", "aria-label": "What you say"});
  return el("form", {class: "say", onsubmit: async (event) => {
    event.preventDefault();
    if (await send(`/_carrier/calls/${sid}/speech`, {text: input.value})) input.value = "";
  }}, input, el("button", {type: "submit", class: "secondary"}, "Say it"));
}

function renderLeg(call, isLeg) {
  const started = call.events.length ? ` · ${clock(call.events[0].clock)}` : "";
  const box = el("div", {class: isLeg ? "leg" : "call"},
    el("h3", {}, `${DIRECTIONS[call.direction] || call.direction}: ${named(call.from, call.from_label)} → `
      + `${named(call.to, call.to_label)} `, el("span", {class: "status"}, call.status.replace("-", " ")), started));
  if (LIVE.has(call.status)) {
    const controls = el("div", {class: "controls"});
    if (call.status === "ringing" && call.live) {
      controls.append(el("button", {type: "button", onclick: () => send(`/_carrier/calls/${call.sid}/answer`)},
        "Answer"));
    }
    controls.append(el("button", {type: "button", class: "secondary",
      onclick: () => send(`/_carrier/calls/${call.sid}/hangup`)}, "Hang up"));
    if (call.status === "in-progress" && call.live) {
      controls.append(keypad(call.sid), speechForm(call.sid));
      controls.append(el("p", {class: "hint"}, call.listening.length
        ? `Listening for ${call.listening.map((input) => input === "dtmf" ? "keys" : "words").join(" and ")} now.`
        : "Nothing is listening for keys or words right now."));
    }
    box.append(controls);
  }
  const list = el("ol", {class: "timeline"});
  for (const event of call.events) {
    list.append(el("li", {class: event.kind}, el("time", {}, clock(event.clock)), ` ${describe(event)}`));
  }
  box.append(list);
  for (const leg of call.legs) box.append(renderLeg(leg, true));
  return box;
}

async function refresh() {
  try {
    const data = await (await fetch("/_carrier/calls")).json();
    const text = JSON.stringify(data.calls);
    if (text === lastCalls) return;
    lastCalls = text;
    const focused = document.activeElement && document.activeElement.id;
    const draft = focused ? document.activeElement.value : null;
    document.getElementById("calls").replaceChildren(...(data.calls.length
      ? data.calls.map((c) => renderLeg(c, false)) : [el("p", {}, "No calls yet.")]));
    const again = focused && document.getElementById(focused);
    if (again) {  // keep what is being typed across the refresh
      again.value = draft;
      again.focus();
    }
  } finally {
    setTimeout(refresh, 1000);
  }
}

async function showPhones() {
  const data = await (await fetch("/_carrier/phones")).json();
  document.getElementById("phones").replaceChildren(...data.phones.filter((p) => p.address !== data.you).map((p) =>
    el("li", {}, `${named(p.address, p.label)} ${ANSWERS[p.answer] || p.answer}`
      + (p.keys.length ? `, presses ${p.keys.filter((k) => k).join(" then ")}` : ""))));
}

function showSaved(id, text) {
  const target = document.getElementById(id);
  target.textContent = text;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("you-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const phone = new FormData(event.target).get("phone");
    if (await send("/_carrier/you", {phone}, "PUT")) showSaved("you-saved", `Saved: you are ${phone}.`);
  });
  document.getElementById("script-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const keys = form.get("keys").split(",").map((k) => k.trim()).filter((k) => k);
    const body = {answer: form.get("answer"), ring_seconds: 2, keys, label: form.get("label").trim() || null};
    const saved = await send(`/_carrier/phones/${form.get("phone")}`, body, "PUT");
    if (saved) {
      showSaved("script-saved", `Saved: ${named(saved.address, saved.label)} ${ANSWERS[saved.answer]}.`);
      showPhones();
    }
  });
  document.getElementById("dial-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const you = document.querySelector("#you-form input[name=phone]");
    if (!you.checkValidity()) {
      notice("Save your phone number first: the call is placed from it.");
      return;
    }
    await send("/_carrier/you", {phone: you.value}, "PUT");
    send("/_carrier/inbound", {from: you.value, to: new FormData(event.target).get("to")});
  });
  showPhones();
  refresh();
});

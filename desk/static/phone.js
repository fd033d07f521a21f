// The desk's browser phone: the bar's buttons, keyboard shortcuts, spoken announcements, and the call's state (ringing,
// connected with a running timer, ended) in the bar and in the popped thread's #call-state. It talks to one back end,
// chosen by the server in data-backend: phone-twilio.js (Twilio's Voice SDK) or phone-carrier.js (the local carrier).
// Others may follow the call through the document's "softphone:state" events ({state, sid}).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("softphone");
  const backend = bar && window.ThreadlinePhone && window.ThreadlinePhone[bar.dataset.backend];
  if (!backend) return;
  const part = (name) => bar.querySelector(`.phone-${name}`);
  const [line, timer, answer, mute, hangUp, keypad, announcer] =
    ["state", "timer", "answer", "mute", "hangup", "keypad", "announce"].map(part);

  let state = "starting";
  let status = "Starting your phone…";
  let call = null;  // {sid, from, since (ms, once connected), seconds (once ended), muted}

  const clock = (seconds) => `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  const spoken = (seconds) => {
    const minutes = Math.floor(seconds / 60);
    const parts = minutes ? [`${minutes} minute${minutes === 1 ? "" : "s"}`] : [];
    if (seconds % 60 || !minutes) parts.push(`${seconds % 60} second${seconds % 60 === 1 ? "" : "s"}`);
    return parts.join(" ");
  };
  const elapsed = () => {
    if (!call || call.since === undefined) return null;
    return call.seconds !== undefined ? call.seconds : Math.floor((Date.now() - call.since) / 1000);
  };
  const say = (text) => { announcer.textContent = text; };

  // Who is calling, in words: a browser phone's address is no number to read out.
  const caller = (from) => (!from ? "an unknown number" : from.startsWith("client:") ? "a browser phone" : from);

  const words = () => {
    if (state === "ringing") return {label: "Ringing", detail: `call from ${caller(call.from)}`};
    if (state === "connected") return {label: call.muted ? "Connected, muted" : "Connected", detail: ""};
    if (state === "ended") return {label: elapsed() === null ? "Missed call" : "Call ended", detail: ""};
    return {label: status, detail: ""};
  };

  const fillCallState = () => {
    // The popped thread's call state, when the pop is about this call; its own ticking is never announced (the
    // bar's status line says each change once).
    for (const section of document.querySelectorAll("#call-state")) {
      section.setAttribute("aria-live", "off");
      const pop = section.closest("[data-agent-call]");
      if (!call || !pop || pop.dataset.agentCall !== call.sid) continue;  // another call's: the server's words stay
      const {label} = words();
      const seconds = elapsed();
      const shown = Object.assign(document.createElement("p"), {className: `call-state ${state}`});
      shown.append(Object.assign(document.createElement("strong"), {textContent: label}));
      if (seconds !== null) {
        shown.append(" ", Object.assign(document.createElement("span"), {className: "call-timer",
                                                                         textContent: clock(seconds)}));
      }
      section.replaceChildren(shown);
    }
  };

  const render = () => {
    const {label, detail} = words();
    bar.dataset.state = state;
    line.textContent = detail ? `${label}: ${detail}` : label;
    const seconds = elapsed();
    timer.hidden = seconds === null || !["connected", "ended"].includes(state);
    timer.textContent = timer.hidden ? "" : clock(seconds);
    answer.disabled = state !== "ringing";
    hangUp.disabled = !["ringing", "connected"].includes(state);
    mute.disabled = state !== "connected";
    mute.setAttribute("aria-pressed", String(Boolean(call && call.muted)));
    keypad.hidden = state !== "connected";
    fillCallState();
  };

  const become = (next, announcement) => {
    state = next;
    render();
    if (announcement) say(announcement);
    document.dispatchEvent(new CustomEvent("softphone:state", {detail: {state, sid: call && call.sid}}));
    // The popped thread swaps in its finished briefing, with the outcome form, at once (desk.js).
    if (state === "ended") document.dispatchEvent(new CustomEvent("desk:call-ended"));
  };

  const phone = backend(bar, {
    ready: () => {
      status = "Ready for calls";
      if (["starting", "offline"].includes(state)) become("ready");
    },
    offline: (text) => {
      status = text;
      if (["starting", "ready", "ended"].includes(state)) become("offline", text);
    },
    ringing: ({sid, from}) => {
      call = {sid, from, muted: false};
      become("ringing", `Incoming call from ${caller(from)}. Answer with Alt+Shift+A.`);
    },
    connected: () => {
      if (!call || state === "connected") return;
      call.since = Date.now();
      become("connected", "Connected.");
    },
    muted: (muted) => {
      if (!call) return;
      call.muted = muted;
      render();
      say(muted ? "Muted." : "Unmuted.");
    },
    ended: () => {
      if (!call || state === "ended") return;
      const seconds = elapsed();
      if (seconds !== null) call.seconds = seconds;
      become("ended", seconds === null ? "Missed call." : `Call ended after ${spoken(seconds)}.`);
    },
    problem: (text) => say(text),
  });

  const press = (key) => {
    if (state !== "connected") return;
    phone.sendDigits(key);
    say(`Pressed ${key}.`);
  };
  const actions = {
    KeyA: () => state === "ringing" && phone.answer(),
    KeyH: () => ["ringing", "connected"].includes(state) && phone.hangUp(),
    KeyM: () => state === "connected" && phone.mute(!call.muted),
  };
  answer.addEventListener("click", actions.KeyA);
  hangUp.addEventListener("click", actions.KeyH);
  mute.addEventListener("click", actions.KeyM);
  keypad.addEventListener("click", (event) => {
    const key = event.target.closest("[data-key]");
    if (key) press(key.dataset.key);
  });
  document.addEventListener("keydown", (event) => {
    if (event.altKey && event.shiftKey && !event.ctrlKey && !event.metaKey && actions[event.code]) {
      event.preventDefault();
      actions[event.code]();
      return;
    }
    const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    if (!typing && !event.altKey && !event.ctrlKey && !event.metaKey && /^[0-9*#]$/.test(event.key)) press(event.key);
  });

  const pop = document.getElementById("screen-pop");
  if (pop) new MutationObserver(fillCallState).observe(pop, {childList: true});  // a thread popped: show this call
  setInterval(() => { if (state === "connected") render(); }, 1000);
  render();
});

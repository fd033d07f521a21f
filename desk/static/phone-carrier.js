// The browser phone's back end for the local carrier: the page registers its client identity with the carrier (as
// Twilio's Device.register() does with Twilio), asks it twice a second which legs ring that identity, and answers,
// presses keys, mutes and hangs up through it. The carrier carries no sound: everything else is as with Twilio.
"use strict";

window.ThreadlinePhone = window.ThreadlinePhone || {};

window.ThreadlinePhone.carrier = (bar, on) => {
  const POLL_MS = 500;
  const REGISTER_MS = 10000;  // the carrier keeps a registration 30 s
  const base = `${bar.dataset.carrier}/_carrier/clients/${encodeURIComponent(bar.dataset.identity)}`;
  let current = null;  // {sid, answered}
  let reachable = null;

  // What the agent hears when an action fails (the carrier's own message goes to the console).
  const FAILED = {answer: "The call could not be answered: it may have ended.",
                  keys: "That key was not heard: nothing on the call is listening for keys right now.",
                  mute: "Mute did not change: the call may have ended.",
                  hangup: "The call could not be hung up: it may have ended already."};

  const send = async (method, path, body) => {
    const options = {method};
    if (body) Object.assign(options, {headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const response = await fetch(base + path, options);
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      throw new Error((answer.error && answer.error.message) || `the carrier answered ${response.status}`);
    }
    return response.json();
  };

  const reached = (ok) => {
    if (ok === reachable) return;
    reachable = ok;
    if (ok) on.ready();
    else on.offline("The phone network can't be reached; trying again.");
  };

  const register = async () => {
    try {
      await send("PUT", "");
      reached(true);
    } catch (error) {
      reached(false);
    }
  };

  let polling = false;
  const poll = async () => {
    if (polling) return;  // the last answer is not in yet
    polling = true;
    let calls;
    try {
      calls = (await send("GET", "/calls")).calls;
    } catch (error) {
      reached(false);
      return;
    } finally {
      polling = false;
    }
    const leg = current && calls.find((call) => call.sid === current.sid);
    if (current && !leg) {
      current = null;
      on.ended();
    } else if (leg && leg.status === "in-progress" && !current.answered) {
      current.answered = true;
      on.connected();
    }
    if (!current) {
      const ringing = calls.find((call) => call.at_desk && call.status === "ringing");
      if (ringing) {
        current = {sid: ringing.sid, answered: false};
        on.ringing({sid: ringing.sid, from: ringing.from});
      }
    }
  };

  const act = async (action, body) => {
    if (!current) return;
    try {
      return await send("POST", `/calls/${encodeURIComponent(current.sid)}/${action}`, body);
    } catch (error) {
      console.warn(`browser phone: ${action}: ${error.message}`);
      on.problem(FAILED[action]);
    }
  };

  register().then(poll);
  setInterval(register, REGISTER_MS);
  setInterval(poll, POLL_MS);

  return {
    answer: () => act("answer"),
    hangUp: () => act("hangup"),
    mute: async (muted) => { if (await act("mute", {muted})) on.muted(muted); },
    sendDigits: (digits) => act("keys", {digits}),
  };
};

// The browser phone's back end for Twilio: Twilio's Voice JavaScript SDK (vendor/twilio-voice-sdk), registered with
// an access token from /desk/token and given a fresh one before each expires.
"use strict";

window.ThreadlinePhone = window.ThreadlinePhone || {};

window.ThreadlinePhone.twilio = (bar, on) => {
  let device = null;
  let current = null;

  const trouble = (error) => {  // the details to the console; to the agent, what it means for them
    console.warn("browser phone:", error);
    on.problem("Your phone lost the phone service for a moment; if a call was on, it may have ended.");
  };

  const token = async () => {
    const response = await fetch(bar.dataset.tokenUrl, {credentials: "same-origin",
                                                        headers: {Accept: "application/json"}});
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((answer.error && answer.error.message) || "no phone token");
    return answer.token;
  };

  const follow = (call) => {
    if (current) {  // already on a call: this one is declined, and the caller's Dial moves on
      call.reject();
      return;
    }
    current = call;
    const over = () => {
      if (current === call) current = null;
      on.ended();
    };
    call.on("accept", () => on.connected());
    call.on("mute", (muted) => on.muted(muted));
    call.on("disconnect", over);
    call.on("cancel", over);  // the caller left, or the call went elsewhere, before it was answered
    call.on("reject", over);
    call.on("error", trouble);
    on.ringing({sid: call.parameters.CallSid, from: call.parameters.From});
  };

  const start = async () => {
    try {
      device = new window.Twilio.Device(await token(), {
        closeProtection: "A call is in progress: leaving this page ends it."});
    } catch (error) {
      console.warn("browser phone:", error);
      on.offline("Your phone could not start: reload the page to try again.");
      return;
    }
    device.on("registered", () => on.ready());
    device.on("unregistered", () => on.offline("Your phone is not taking calls; trying again."));
    device.on("error", trouble);
    device.on("incoming", follow);
    device.on("tokenWillExpire", async () => {  // 10 s before it does (the SDK's tokenRefreshMs)
      try {
        device.updateToken(await token());
      } catch (error) {
        console.warn("browser phone:", error);
        on.problem("Your phone's sign-in could not be renewed: reload the page before your next call.");
      }
    });
    device.register().catch((error) => {
      console.warn("browser phone:", error);
      on.offline("Your phone could not reach the phone service: reload the page to try again.");
    });
  };
  start();

  return {
    answer: () => current && current.accept(),
    hangUp: () => current && (current.status() === "pending" ? current.reject() : current.disconnect()),
    mute: (muted) => current && current.mute(muted),
    sendDigits: (digits) => current && current.sendDigits(digits),
  };
};

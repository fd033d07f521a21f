// The admin forms, enhanced: add and remove rows of hours and holidays, and offer only the voices that speak the
// language chosen. Without this script the form works the same: blank rows are ignored and the server checks voices.
"use strict";

// Row ids and the labels' "for" end in the row's index: a copy takes the next free one.
const renumber = (row, index) => {
  for (const element of row.querySelectorAll("[id]")) element.id = element.id.replace(/\d+$/, index);
  for (const label of row.querySelectorAll("label[for]")) label.htmlFor = label.htmlFor.replace(/\d+$/, index);
  for (const hidden of row.querySelectorAll(".visually-hidden")) {
    hidden.textContent = hidden.textContent.replace(/\d+(?=\D*$)/, index + 1);
  }
  for (const label of row.querySelectorAll("label:not(:has(.visually-hidden))")) {
    label.textContent = label.textContent.replace(/\d+$/, index + 1);
  }
  if (row.id) row.id = row.id.replace(/\d+$/, index);
};

const removeButton = (rows, row) => {
  const button = Object.assign(document.createElement("button"), {type: "button", className: "small",
                                                                   textContent: "Remove"});
  const name = row.querySelector("label").textContent.replace(/:.*$/, "");
  button.setAttribute("aria-label", `Remove ${name}`);
  button.addEventListener("click", () => {
    const add = rows.nextElementSibling;
    if (rows.querySelectorAll(".row").length > 1) row.remove();
    else for (const input of row.querySelectorAll("input")) input.value = "";
    add.focus();
  });
  [...row.querySelectorAll("input")].pop().after(button);
};

const enhanceRows = (rows) => {
  for (const row of rows.querySelectorAll(".row")) removeButton(rows, row);
  const add = Object.assign(document.createElement("button"), {type: "button", className: "small",
                                                                textContent: rows.dataset.add});
  add.addEventListener("click", () => {
    const all = rows.querySelectorAll(".row");
    const copy = all[all.length - 1].cloneNode(true);
    copy.querySelectorAll(".problem, button").forEach((element) => element.remove());
    for (const input of copy.querySelectorAll("input")) {
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
    const used = [...all].map((row) => Number(row.querySelector("input").id.match(/\d+$/)[0]));
    renumber(copy, Math.max(...used) + 1);
    removeButton(rows, copy);
    rows.append(copy);
    copy.querySelector("input").focus();
  });
  rows.after(add);
};

const enhanceVoices = () => {
  const language = document.getElementById("language");
  const voice = document.getElementById("voice");
  if (!language || !voice) return;
  // On load the voice chosen stays offered even when it does not speak the language: what was typed is kept.
  const offer = (keep) => {
    for (const group of voice.querySelectorAll("optgroup")) {
      const other = group.dataset.language !== language.value && !(keep && group.contains(voice.selectedOptions[0]));
      group.hidden = other;
      group.disabled = other;
    }
    if (voice.selectedOptions[0] && voice.selectedOptions[0].matches(":disabled")) voice.value = "";
  };
  language.addEventListener("change", () => offer(false));
  offer(true);
};

const enhanceHours = () => {
  const days = document.getElementById("days");
  const always = document.getElementById("hours-always");
  if (!days || !always) return;
  const show = () => { days.hidden = always.checked; };
  for (const radio of document.querySelectorAll('input[name="hours"]')) radio.addEventListener("change", show);
  show();
};

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-rows]").forEach(enhanceRows);
  enhanceVoices();
  enhanceHours();
});

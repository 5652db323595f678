// The page of a race one may not (or no longer) watch. A share link carries its token in
// the URL fragment (#access=...), which browsers never send to the server, so no token
// lands in a server log. This script trades it once for an HttpOnly cookie
// (POST /races/<slug>/access) that the page, its API calls and its socket then carry.

const gate = document.getElementById("gate");
const title = document.getElementById("gate-title");
const reason = document.getElementById("gate-reason");

function say(heading, words) {
  title.textContent = heading;
  reason.textContent = words;
}

async function trade(token) {
  say("Opening the race…", "Checking your share link.");
  let response;
  try {
    response = await fetch(gate.dataset.accessUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
      credentials: "same-origin",
    });
  } catch {
    say("Cannot reach RaceWeb", "Check your connection, then reload this page.");
    return;
  }
  if (response.ok) {
    window.location.reload();
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) {
    say("This link no longer works", body.error || "Ask the organizer for a new link.");
  } else {
    say("Race not found", "This share link is not valid for this race. Check that you opened the whole link.");
  }
}

function tradeFragment() {
  const match = window.location.hash.match(/^#access=([A-Za-z0-9._-]+)/);
  if (match) {
    history.replaceState(null, "", window.location.pathname);
    trade(match[1]);
  }
}

tradeFragment();
// A link pasted into this very tab changes only the fragment: no new page load.
window.addEventListener("hashchange", tradeFragment);

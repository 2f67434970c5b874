// The Mercure demo page (mercure.html): subscribe through the hub with
// EventSource, get a token from the application, publish with fetch.
"use strict";

// The hub: also announced by every page of this site in its
// Link: </.well-known/mercure>; rel="mercure" header (MercureHubLink).
const HUB = "/.well-known/mercure";
const TOPICS = "https://example.com/demo/{room}";    // a URI template
const $ = (id) => document.getElementById(id);

function addLine(text, cls) {
  const line = document.createElement("div");
  if (cls) line.className = cls;
  line.textContent = text;
  $("log").prepend(line);
}

// The token is an HttpOnly cookie that no script can read: the page only
// remembers until when it is valid (in localStorage, shared by this
// browser's tabs, like the cookie).
function tokenExpiry() {
  const exp = Number(localStorage.getItem("mercureTokenExpires"));
  return exp * 1000 > Date.now() ? exp : 0;
}

// Subscribe.  The browser sends the hub's cookie by itself (same origin),
// so a tab with a token gets the private updates its claims allow.  On a
// new subscription (after getting a token) lastEventID asks the hub for
// what came since the last update seen.
let source = null;
let lastId = "";
function subscribe() {
  if (source) source.close();
  let url = HUB + "?topic=" + encodeURIComponent(TOPICS);
  if (lastId) url += "&lastEventID=" + encodeURIComponent(lastId);
  const withToken = tokenExpiry() > 0;
  source = new EventSource(url);
  source.onopen = () => {
    $("status").textContent = withToken ? "Connected (with a token)" : "Connected (anonymous)";
    $("status").className = "ok";
  };
  source.onerror = () => {
    $("status").textContent = "Disconnected (retrying)";
    $("status").className = "bad";
  };
  source.onmessage = (e) => {
    lastId = e.lastEventId;
    let shown = e.data;
    try {        // this page publishes JSON; others may publish any text
      const u = JSON.parse(e.data);
      shown = "[" + u.room + "] " + u.text + (u.private ? " (private)" : "");
    } catch (_) { /* not JSON: shown as it is */ }
    addLine("Received: " + shown);
  };
  showToken();
}

function showToken() {
  const exp = tokenExpiry();
  $("token").textContent = exp
    ? "Token until " + new Date(exp * 1000).toLocaleTimeString() + "."
    : "No token.";
  $("btn-publish").disabled = !exp;
}

// Get a token: the application (cgi-bin/mercure-token.cgi) answers with
// the mercureAuthorization cookie; subscribe again so the hub sees it.
$("btn-token").onclick = async () => {
  try {
    const r = await fetch("/cgi-bin/mercure-token.cgi", { method: "POST" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    const t = await r.json();
    localStorage.setItem("mercureTokenExpires", t.expires);
    addLine("Log: got a token for " + t.topics.join(", "), "muted");
    subscribe();
  } catch (err) {
    addLine("Log: no token: " + err.message, "bad");
  }
};
// Another tab of this browser got one: the cookie is this tab's too.
window.addEventListener("storage", (e) => {
  if (e.key === "mercureTokenExpires") subscribe();
});
// The cookie lapses with the token: back to anonymous then.
setInterval(() => {
  if ($("btn-publish").disabled === (tokenExpiry() > 0)) subscribe();
}, 5000);

// Publish: a form POSTed to the hub; the cookie is the publisher's token
// (the hub takes a cookie only from a page of its own origin, which
// fetch() says in the Origin header).  The answer is the update's id.
$("publish").onsubmit = async (e) => {
  e.preventDefault();
  const room = $("room").value;
  const body = new URLSearchParams({
    topic: "https://example.com/demo/" + room,
    data: JSON.stringify({ room: room, text: $("text").value, private: $("private").checked }),
  });
  if ($("private").checked) body.set("private", "on");
  try {
    const r = await fetch(HUB, { method: "POST", body: body, credentials: "same-origin" });
    const answer = await r.text();
    if (!r.ok) throw new Error(r.status + " " + answer);
    addLine("Log: published " + answer, "muted");
    $("text").value = "";
  } catch (err) {
    addLine("Log: publish failed: " + err.message, "bad");
  }
};

subscribe();

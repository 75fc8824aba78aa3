// The kiosk: keeps the list of notices current through server-sent events (/kiosk/events) and opens or closes
// a notice's text on a tap. Builds every element with textContent: no markup from the server is parsed.
"use strict";
(function () {
  var root = document.getElementById("kiosk");
  if (!root) { return; }
  var area = root.getAttribute("data-area");
  var list = document.getElementById("notices");
  var empty = document.getElementById("empty");
  var count = document.getElementById("count");
  var status = document.getElementById("status");
  var opened = {};

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function stamp(iso) {
    var d = new Date(iso);
    var china = new Date(d.getTime() + (d.getTimezoneOffset() + 480) * 60000);
    return pad(china.getMonth() + 1) + "-" + pad(china.getDate()) + " " + pad(china.getHours()) + ":" +
      pad(china.getMinutes());
  }
  function toggle(card, open) {
    var button = card.querySelector("button.open");
    var text = card.querySelector(".text");
    button.setAttribute("aria-expanded", open ? "true" : "false");
    text.hidden = !open;
    opened[card.getAttribute("data-id")] = open;
  }
  function wire(card) {
    card.querySelector("button.open").addEventListener("click", function () {
      toggle(card, card.querySelector(".text").hidden);
    });
  }
  function span(cls, text) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }
  function card(n) {
    var li = document.createElement("li");
    li.className = "card severity-" + n.severity;
    li.id = "notice-" + n.id;
    li.setAttribute("data-id", String(n.id));
    var button = document.createElement("button");
    button.className = "open";
    button.type = "button";
    button.setAttribute("aria-controls", "text-" + n.id);
    button.appendChild(span("badge", n.severity_name));
    button.appendChild(document.createTextNode(" "));
    button.appendChild(span("title", n.title));
    button.appendChild(span("meta", n.department + " · " + stamp(n.published_at)));
    var text = document.createElement("div");
    text.className = "text";
    text.id = "text-" + n.id;
    text.textContent = n.text;
    li.appendChild(button);
    li.appendChild(text);
    wire(li);
    return li;
  }
  function show(items) {
    var cards = items.map(card);
    list.replaceChildren.apply(list, cards);
    cards.forEach(function (c, i) {
      var id = c.getAttribute("data-id");
      toggle(c, Object.prototype.hasOwnProperty.call(opened, id) ? opened[id] : i === 0);
    });
    count.textContent = String(items.length);
    empty.hidden = items.length > 0;
  }

  Array.prototype.forEach.call(list.querySelectorAll("li.card"), function (c, i) {
    wire(c);
    toggle(c, i === 0);
  });
  if (!window.EventSource) { return; }
  var source = new EventSource("/kiosk/events?area=" + encodeURIComponent(area));
  source.addEventListener("notices", function (event) {
    show(JSON.parse(event.data));
    root.setAttribute("data-updated", new Date().toISOString());
  });
  source.addEventListener("error", function () {
    status.setAttribute("data-offline", "1");
  });
  source.addEventListener("open", function () {
    status.removeAttribute("data-offline");
  });
})();

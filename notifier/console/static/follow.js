// The follow page keeps itself current: the server sends the live part again (already rendered and escaped)
// whenever it changes, and "end" once nothing is left to send.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || live.dataset.final === "1" || !window.EventSource) {
    return;
  }
  var source = new EventSource(live.dataset.events);
  source.addEventListener("snapshot", function (event) {
    live.innerHTML = event.data;
  });
  source.addEventListener("end", function () {
    source.close();
    live.dataset.final = "1";
    document.querySelectorAll("[data-hide-when-final]").forEach(function (element) {
      element.hidden = true;
    });
  });
})();

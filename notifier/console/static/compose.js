// The compose page: show the fields of the chosen template, and refresh the preview while the clerk types.
// The preview is the server's (POST /console/notices/preview, an HTML fragment the server escaped): the text
// each channel receives and the audience per town. The printout image, slower to make, follows after a pause.
(function () {
  "use strict";
  var form = document.getElementById("compose-form");
  var panel = document.getElementById("preview");
  var status = document.getElementById("preview-status");
  if (!form || !panel || !status) {
    return;
  }
  var QUICK_MS = 500;
  var IMAGE_MS = 2500;
  var quickTimer = null;
  var imageTimer = null;
  var sequence = 0;

  function showContentFields() {
    var chosen = form.querySelector("input[name=content]:checked");
    var useTemplate = chosen && chosen.value === "template";
    form.querySelector(".content-text").hidden = useTemplate;
    form.querySelector(".content-template").hidden = !useTemplate;
    var template = form.querySelector("#template").value;
    var groups = form.querySelectorAll(".template-fields");
    for (var i = 0; i < groups.length; i++) {
      var mine = useTemplate && groups[i].getAttribute("data-template") === template;
      groups[i].hidden = !mine;
      var inputs = groups[i].querySelectorAll("input");
      for (var j = 0; j < inputs.length; j++) {
        inputs[j].disabled = !mine;
      }
    }
  }

  function refresh(withImage) {
    var body = new FormData(form);
    body.set("printout", withImage ? "1" : "0");
    var mine = ++sequence;
    status.textContent = form.getAttribute("data-loading");
    fetch(form.getAttribute("data-preview"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected) {
          throw new Error("signed out");
        }
        return response.text();
      })
      .then(function (html) {
        if (mine !== sequence) {
          return;
        }
        panel.innerHTML = html;
        status.textContent = form.getAttribute("data-updated");
      })
      .catch(function () {
        if (mine === sequence) {
          status.textContent = form.getAttribute("data-failed");
        }
      });
  }

  function schedule() {
    clearTimeout(quickTimer);
    clearTimeout(imageTimer);
    quickTimer = setTimeout(function () { refresh(false); }, QUICK_MS);
    imageTimer = setTimeout(function () { refresh(true); }, IMAGE_MS);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", function (event) {
    if (event.target.name === "content" || event.target.id === "template") {
      showContentFields();
    }
    schedule();
  });
  showContentFields();
  form.setAttribute("data-ready", "1");
})();

// The import status page: reload it every second while the import runs (the link on the page does the same
// by hand), so the rows done and then the counts and the report appear by themselves.
(function () {
  "use strict";
  if (document.getElementById("import-running")) {
    setTimeout(function () { window.location.reload(); }, 1000);
  }
})();
